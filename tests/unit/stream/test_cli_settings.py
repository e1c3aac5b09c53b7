"""Settings are loaded once, in the ``finsent`` entry point; every command reads ``args.settings``."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from stream import cli


def _calls_load_settings(path: Path) -> list[int]:
    """Lines calling ``load_settings`` outside an entry point (a function named ``main``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    in_main = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "main"
               for n in ast.walk(f)}
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and id(node) not in in_main
            and getattr(node.func, "id", getattr(node.func, "attr", None)) == "load_settings"]


def _files_of(module: str) -> list[Path]:
    origin = Path(importlib.util.find_spec(module).origin)
    return sorted(origin.parent.glob("*.py")) if origin.name == "__init__.py" else [origin]


def test_no_command_module_loads_the_settings_again():
    offenders = [f"{path}:{line}" for name in cli.COMMAND_MODULES for path in _files_of(name)
                 for line in _calls_load_settings(path)]
    offenders += [f"stream/{name}:{line}" for name in ("services.py", "wiring.py", "ingest.py", "demo.py")
                  for line in _calls_load_settings(Path(cli.__file__).parent / name)]
    assert offenders == []
    assert "load_settings()" in Path(cli.__file__).read_text()  # the one place: main()


def test_main_hands_the_loaded_settings_to_the_handler(monkeypatch):
    seen = []
    sentinel = object()
    monkeypatch.setattr(cli, "load_settings", lambda: sentinel)
    parser = cli.build_parser()
    args = parser.parse_args(["status"])
    monkeypatch.setattr(cli.argparse.ArgumentParser, "parse_args",
                        lambda self, argv=None: (setattr(args, "func", lambda a: seen.append(a.settings) or 0), args)[1])
    assert cli.main(["status"]) == 0
    assert seen == [sentinel]
