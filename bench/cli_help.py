"""Print the ``--help`` of ``finsent`` and of every command and sub-command, for a before/after diff.

    python bench/cli_help.py > help.txt      # from the checkout to describe

Walks the argparse tree of :func:`stream.cli.build_parser` (every command module registered) and
prints each parser's help under a ``==== finsent ...`` header, at a fixed terminal width.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))
os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: fix it so the diff shows only real changes


def walk(parser: argparse.ArgumentParser, name: str):
    yield name, parser.format_help()
    for action in parser._actions:  # argparse has no public walk of its sub-parsers
        if isinstance(action, argparse._SubParsersAction):
            for sub, p in action.choices.items():
                yield from walk(p, f"{name} {sub}")


def main() -> None:
    from stream.cli import build_parser

    for name, text in walk(build_parser(None), "finsent"):
        print(f"==== {name}\n{text}")


if __name__ == "__main__":
    main()
