#!/usr/bin/env python
"""The longest functions of the runtime packages (stream, model, storage, alerts, deploy), nested ones included.

Usage: ``python bench/longest_functions.py [--top 10] [--over 80]`` (``--over N``: list every one longer than N
lines, exit 1 if there is any).
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("stream", "model", "storage", "alerts", "deploy")


def functions() -> list[tuple[int, str]]:
    out = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    out.append((lines, f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"))
    return sorted(out, reverse=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--over", type=int, help="list every function longer than this; exit 1 if any")
    args = ap.parse_args(argv)
    found = functions()
    rows = [f for f in found if f[0] > args.over] if args.over else found[: args.top]
    for n, where in rows:
        print(f"{n:5d}  {where}")
    return 1 if args.over and rows else 0


if __name__ == "__main__":
    raise SystemExit(main())
