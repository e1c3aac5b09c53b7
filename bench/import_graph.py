#!/usr/bin/env python
"""The package-level import graph of finsent: which package imports which, and the cycles.

Every module of stream, model, storage, alerts and deploy is parsed (``ast``; imports inside functions
count too, as in ``tests/unit/test_layering.py``, whose graph this prints).  A node is a package or a
sub-package down to ``--depth`` name parts (default 2: ``stream.base``, ``stream.linking``, ``model``, ...;
a plain module of a top-level package counts as the package, a command module ``*.cli`` is a node of its
own at depth 2).  Prints every edge with its number of import statements, then the strongly connected
components of more than one node (the cycles).

Usage::

    python bench/import_graph.py [--depth 1|2 | --layers] [--json FILE]

``--layers``: the graph of the declared layers of ``tests/unit/test_layering.py`` (base, messages, model,
storage, alerts, deploy, pipeline, app) instead, each edge marked ``up`` where it goes to a higher layer.
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

from tests.unit.test_layering import LAYERS, all_modules, cycles, graph, imports, layer_of


def layer_graph() -> Counter:
    """(importing layer, imported layer) -> number of import statements, between different layers."""
    edges: Counter = Counter()
    for path, mod in all_modules():
        src = layer_of(mod)
        for _, target in imports(path, mod):
            dst = layer_of(target)
            if src is not None and dst is not None and dst != src:
                edges[(LAYERS[src][0], LAYERS[dst][0])] += 1
    return edges


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--depth", type=int, default=2, choices=(1, 2))
    ap.add_argument("--layers", action="store_true", help="the graph of the declared layers")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    edges = layer_graph() if args.layers else graph(args.depth)
    order = [name for name, _ in LAYERS]
    for (a, b), n in sorted(edges.items(), key=lambda e: (order.index(e[0][0]), order.index(e[0][1]))
                             if args.layers else e):
        up = "  up" if args.layers and order.index(b) > order.index(a) else ""
        print(f"{a:18s} -> {b:18s} {n:4d}{up}")
    found = cycles(edges)
    print(f"# {len(edges)} edges; {len(found)} cycle(s)" + "".join(f"\n#   {' <-> '.join(c)}" for c in found))
    if args.json:
        args.json.write_text(json.dumps({"edges": [[a, b, n] for (a, b), n in sorted(edges.items())],
                                         "cycles": found}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
