"""The declared layers of finsent: a module may import only from its own layer or the layers below.

Every module of stream, model, storage, alerts and deploy is parsed with ``ast``;
imports at module level and inside functions both count.  A module belongs to
the layer of the longest prefix listed in ``LAYERS`` (``stream.messages.text`` is in
``messages`` although ``model`` is a layer of its own).  The README's
"Architecture" section describes the same order.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("stream", "model", "storage", "alerts", "deploy")

# Lowest first.  Module prefixes per layer; the longest matching prefix decides.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # settings, errors, label vocabulary, CLI time parsing, CLI table printer: imports nothing of ours
    ("base", ("stream.base",)),
    # the news.raw message contract and what makes messages without a broker or a database:
    # validation, the model's input text, ticker linking, archive reading, the synthetic generator
    ("messages", ("stream.messages.raw_message", "stream.messages.text", "stream.linking", "stream.messages.replay", "stream.synthetic")),
    # the topic-and-sentiment model: training, checkpoints, inference
    # (model.ticker_sentiment: ticker links -> the model's entity queries -> per-ticker sentiment)
    ("model", ("model", "model.ticker_sentiment")),
    # PostgreSQL: migrations, writer, buckets, maintenance; story novelty reads its signatures from it
    ("storage", ("storage", "stream.messages.novelty")),
    # spike detection and delivery
    ("alerts", ("alerts",)),
    # the local stack and production examples
    ("deploy", ("deploy",)),
    # the application: Faust app and pipeline, ingest, demo, plot, dashboard and every CLI module
    ("app", ("stream", "model.cli", "storage.cli", "alerts.cli", "deploy.cli", "stream.linking.cli")),
)


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
    for path, module in all_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if n.split(".")[0] == "tests"]
    assert not found, "runtime modules import the tests:\n  " + "\n  ".join(found)
