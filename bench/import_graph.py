#!/usr/bin/env python
"""The package-level import graph of finsent: which package imports which, and the cycles.

Every module of stream, model, storage, alerts and deploy is parsed (``ast``; imports inside functions
count too, as in ``tests/unit/test_layering.py``, whose parser this reuses).  A node is a package or a
sub-package down to ``--depth`` name parts (default 2: ``stream.base``, ``stream.linking``, ``model``, ...;
a plain module of a top-level package counts as the package).  Prints every edge with its number of
import statements, then the strongly connected components of more than one node (the cycles).

Usage::

    python bench/import_graph.py [--depth 1|2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.unit.test_layering import PACKAGES, imports, module_name  # noqa: E402


def node_of(module: str, depth: int) -> str:
    parts = module.split(".")
    if depth >= 2 and len(parts) >= 2:
        sub = ROOT / parts[0] / parts[1]
        if sub.is_dir():  # a sub-package
            return ".".join(parts[:2])
    return parts[0]


def graph(depth: int) -> Counter:
    edges: Counter = Counter()
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            mod = module_name(path)
            src = node_of(mod, depth)
            for _, target in imports(path, mod):
                dst = node_of(target, depth)
                if dst != src:
                    edges[(src, dst)] += 1
    return edges


def cycles(edges: Counter) -> list[list[str]]:
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--depth", type=int, default=2, choices=(1, 2))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    edges = graph(args.depth)
    for (a, b), n in sorted(edges.items()):
        print(f"{a:18s} -> {b:18s} {n:4d}")
    found = cycles(edges)
    print(f"# {len(edges)} edges; {len(found)} cycle(s)" + "".join(f"\n#   {' <-> '.join(c)}" for c in found))
    if args.json:
        args.json.write_text(json.dumps({"edges": [[a, b, n] for (a, b), n in sorted(edges.items())],
                                         "cycles": found}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
