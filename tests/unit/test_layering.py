"""The declared layers of finsent: a module may import only from its own layer or the layers below.

Every module of stream, model, storage, alerts and deploy is parsed with ``ast``;
imports at module level and inside functions both count.  A module belongs to
the layer of the longest prefix listed in ``LAYERS`` (``model.cli`` is in
``app`` although ``model`` is a layer of its own).  The README's
"Architecture" section describes the same order.  Besides the order: no import cycle between
packages and sub-packages (the graph of ``bench/import_graph.py``), and no SQL outside storage.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("stream", "model", "storage", "alerts", "deploy")

# Lowest first.  Module prefixes per layer; the longest matching prefix decides.  Each top-level folder is
# one layer, except stream/, whose sub-packages are named sublayers: its base at the bottom, the message
# layer above it, its pipeline core above storage and alerts, and its plain modules the app on top.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # settings, errors, label vocabulary, CLI time parsing, CLI table printer: imports nothing of ours
    ("base", ("stream.base",)),
    # the news.raw message contract and what makes messages without a broker or a database:
    # validation, the model's input text, archive reading, story novelty in memory (stream.messages),
    # ticker linking (stream.linking), the synthetic generator (stream.synthetic)
    ("messages", ("stream.messages", "stream.linking", "stream.synthetic")),
    # the topic-and-sentiment model: training, checkpoints, inference, per-ticker sentiment
    ("model", ("model",)),
    # PostgreSQL: migrations, writer, buckets, maintenance, novelty's stored stories: all the SQL
    ("storage", ("storage",)),
    # spike detection and delivery
    ("alerts", ("alerts",)),
    # the local stack and production examples
    ("deploy", ("deploy",)),
    # the pipeline: the batch processor and its loop, the ingest loop, Kafka I/O, sources and sinks
    ("pipeline", ("stream.core", "stream.sources", "stream.sinks")),
    # the application: Faust app, services, wiring, demo, plot, dashboard and every package's commands
    ("app", ("stream", "model.cli", "storage.cli", "alerts.cli", "deploy.cli", "stream.linking.cli")),
)
# Where SQL may be sent (``execute(`` calls): the storage layer, and the local stack's bootstrap (it
# creates the database before storage's migrations can run).
SQL_ALLOWED = ("storage", "deploy.localstack")


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer index)
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if module == p or module.startswith(p + "."):
                if best is None or len(p) > best[0]:
                    best = (len(p), i)
    return None if best is None else best[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) of every import of ours in the file, at any depth."""
    is_pkg = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # 'from pkg import sub' may name a submodule: count the most specific name that is ours
            targets = [f"{stem}.{a.name}" if (ROOT / Path(*f"{stem}.{a.name}".split("."))).exists()
                       or (ROOT / Path(*f"{stem}.{a.name}".split("."))).with_suffix(".py").exists() else stem
                       for a in node.names]
        else:
            continue
        for t in targets:
            if t.split(".")[0] in PACKAGES:
                found.append((node.lineno, t))
    return found


def all_modules() -> list[tuple[Path, str]]:
    return [(p, module_name(p)) for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]


# --------------------------------------------------------------------------- the package-level graph
def node_of(module: str, depth: int = 2) -> str:
    """The graph node of a module: its top-level package (depth 1), or its sub-package (depth 2:
    ``stream.base``, ``stream.linking``, ...; a plain module of a top-level package counts as the package).
    At depth 2 a command module (``model.cli``, ``stream.linking.cli``, ``stream.cli``) is a node of its
    own: the app's sublayer of commands, which may import every layer."""
    parts = module.split(".")
    if depth < 2:
        return parts[0]
    if parts[-1] == "cli":
        return module
    if len(parts) >= 2 and (ROOT / parts[0] / parts[1] / "__init__.py").is_file():  # a sub-package
        return ".".join(parts[:2])
    return parts[0]


def graph(depth: int = 2) -> Counter:
    """(importing node, imported node) -> number of import statements, over every module of ours."""
    edges: Counter = Counter()
    for path, mod in all_modules():
        src = node_of(mod, depth)
        for _, target in imports(path, mod):
            dst = node_of(target, depth)
            if dst != src:
                edges[(src, dst)] += 1
    return edges


def cycles(edges) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    adj: dict[str, list[str]] = {}
    for a, b in edges:
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in adj[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(adj):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer():
    missing = [m for _, m in all_modules() if layer_of(m) is None]
    assert not missing, f"modules in no declared layer: {missing}"


def test_no_module_imports_from_a_layer_above_it():
    upward = []
    for path, module in all_modules():
        mine = layer_of(module)
        for line, target in imports(path, module):
            theirs = layer_of(target)
            if theirs is not None and mine is not None and theirs > mine:
                upward.append(f"{path.relative_to(ROOT)}:{line}: {module} ({LAYERS[mine][0]}) imports "
                              f"{target} ({LAYERS[theirs][0]})")
    assert not upward, "imports from a higher layer:\n  " + "\n  ".join(upward)


def test_base_layer_imports_nothing_else_of_ours():
    outside = []
    for path, module in all_modules():
        if layer_of(module) != 0:
            continue
        for line, target in imports(path, module):
            if layer_of(target) != 0:
                outside.append(f"{path.relative_to(ROOT)}:{line}: {module} imports {target}")
    assert not outside, "the base layer must import nothing else of finsent:\n  " + "\n  ".join(outside)


def test_stream_package_init_imports_nothing():
    """Importing stream.base must not drag in the rest of stream (via stream/__init__.py)."""
    assert imports(ROOT / "stream" / "__init__.py", "stream") == []
    assert imports(ROOT / "stream" / "base" / "__init__.py", "stream.base") == []


def test_no_runtime_module_imports_the_tests():
    """Test and benchmark helpers live under tests/support/; finsent's own packages never import tests/."""
    found = []
    for path, _module in all_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if n.split(".")[0] == "tests"]
    assert not found, "runtime modules import the tests:\n  " + "\n  ".join(found)


def test_no_import_cycle_between_packages_and_sub_packages():
    """The graph of packages and sub-packages (``bench/import_graph.py``; imports inside functions count)
    has no cycle: a cycle hidden by function-level imports (the dashboard and the demo once) fails here."""
    edges = graph(depth=2)
    found = cycles(edges)
    detail = ["{}: {}".format(" <-> ".join(c), ", ".join(f"{a} -> {b}" for a, b in sorted(edges)
                                                   if a in c and b in c)) for c in found]
    assert not found, "import cycles:\n  " + "\n  ".join(detail)


def test_cycles_finds_a_cycle_hidden_in_a_longer_loop():
    assert cycles({("a", "b"): 1, ("b", "c"): 1, ("c", "a"): 1, ("c", "d"): 1}) == [["a", "b", "c"]]
    assert cycles({("a", "b"): 1, ("b", "c"): 1}) == []


def test_a_data_folder_is_not_a_sub_package():
    """model/checkpoint/ holds weights, not code: model.checkpoint (model/checkpoint.py) is a module of model."""
    assert (ROOT / "model" / "checkpoint").is_dir() and (ROOT / "model" / "checkpoint.py").is_file()
    assert node_of("model.checkpoint") == "model"
    assert node_of("stream.linking.matcher") == "stream.linking" and node_of("stream.app") == "stream"
    assert node_of("stream.linking.cli") == "stream.linking.cli" and node_of("stream.linking.cli", 1) == "stream"


def _sql_calls(path: Path) -> list[int]:
    """Lines of ``<anything>.execute(...)`` / ``executemany`` / ``execute_values`` calls in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names = {"execute", "executemany", "execute_values", "execute_batch"}
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
            and (getattr(node.func, "attr", None) in names or getattr(node.func, "id", None) in names)]


def test_sql_is_sent_only_from_storage():
    outside = [f"{path.relative_to(ROOT)}:{line}" for path, module in all_modules()
               if not any(module == p or module.startswith(p + ".") for p in SQL_ALLOWED)
               for line in _sql_calls(path)]
    assert not outside, "SQL outside storage/ (move it into a storage module):\n  " + "\n  ".join(outside)
