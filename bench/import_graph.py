#!/usr/bin/env python
"""The package-level import graph of finsent: which package imports which, and the cycles.

Every module of stream, model, storage, alerts and deploy is parsed (``ast``; imports inside functions
count too, as in ``tests/unit/test_layering.py``, whose graph this prints).  A node is a package or a
sub-package down to ``--depth`` name parts (default 2: ``stream.base``, ``stream.linking``, ``model``, ...;
a plain module of a top-level package counts as the package, a command module ``*.cli`` is a node of its
own at depth 2).  Prints every edge with its number of import statements, then the strongly connected components of more than one node (the cycles).

Usage::

    python bench/import_graph.py [--depth 1|2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.unit.test_layering import cycles, graph  # noqa: E402


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
