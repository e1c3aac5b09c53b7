"""Settings are loaded once, in the ``finsent`` entry point; every command reads ``args.settings``."""

from __future__ import annotations

import ast
import importlib.util
import logging
from pathlib import Path
from types import SimpleNamespace

from stream import cli
from stream.base.errors import UserError
from stream.base.redact import install_log_scrubber


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
    modules = {load().__module__ for _, load in cli.COMMANDS}
    assert "stream.cli" in modules and "model.cli" in modules
    offenders = [f"{path}:{line}" for name in sorted(modules) for path in _files_of(name)
                 for line in _calls_load_settings(path)]
    offenders += [f"stream/{name}:{line}" for name in ("services.py", "wiring.py", "core/ingest.py", "demo.py")
                  for line in _calls_load_settings(Path(cli.__file__).parent / name)]
    assert offenders == []
    assert "load_settings()" in Path(cli.__file__).read_text()  # the one place: main()


def test_main_hands_the_loaded_settings_to_the_handler(monkeypatch):
    seen = []
    sentinel = SimpleNamespace(secret_values=lambda: ())
    monkeypatch.setattr(cli, "load_settings", lambda: sentinel)
    parser = cli.build_parser()
    args = parser.parse_args(["status"])
    monkeypatch.setattr(cli.argparse.ArgumentParser, "parse_args",
                        lambda self, argv=None: (setattr(args, "func", lambda a: seen.append(a.settings) or 0), args)[1])
    assert cli.main(["status"]) == 0
    assert seen == [sentinel]


def _run_with(monkeypatch, func, argv=("status",)):
    parser = cli.build_parser(list(argv))
    args = parser.parse_args(list(argv))
    monkeypatch.setattr(cli.argparse.ArgumentParser, "parse_args",
                        lambda self, argv=None: (setattr(args, "func", func), args)[1])
    try:
        return cli.main(list(argv))
    finally:
        install_log_scrubber([])  # main installs the settings' secrets for the whole process


def test_every_error_and_log_line_is_scrubbed_of_the_configured_secrets(monkeypatch, capsys, caplog):
    """Belt and braces behind the redactor: a message that quotes a secret anyway (a library's error, a
    log line of a dependency) reaches the terminal masked."""
    monkeypatch.setenv("FINSENT_DATABASE_URL", "host=db.example user=app password=Db-Secret-1")
    monkeypatch.setenv("FINSENT_ANALYST_PASSWORD", "An-Secret-2")
    monkeypatch.setenv("FINSENT_ALERT_URLS", "json://u:Url-Secret-3@h/x")

    def handler(args):
        logging.getLogger("a.dependency").warning("retrying host=db.example password=Db-Secret-1 (%s)", "An-Secret-2")
        raise UserError("cannot use json://u:Url-Secret-3@h/x nor Db-Secret-1")

    with caplog.at_level(logging.WARNING):
        assert _run_with(monkeypatch, handler) == 2
    shown = capsys.readouterr().err + caplog.text
    assert "retrying" in caplog.text and "cannot use" in shown
    for secret in ("Db-Secret-1", "An-Secret-2", "Url-Secret-3"):
        assert secret not in shown, shown


def test_a_wrong_setting_is_one_line_on_stderr(monkeypatch, capsys):
    monkeypatch.setenv("FINSENT_DATABASE_URL", "host=db password=Db-Secret-1 port")
    assert _run_with(monkeypatch, lambda args: 0) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("finsent: error: invalid FINSENT_DATABASE_URL='***'"), err


def test_each_command_module_registers_the_commands_the_entry_names():
    """``COMMANDS`` is the one list of commands: each loader's module registers exactly the names listed
    with it, in that order (the order of ``finsent --help``)."""
    for names, load in cli.COMMANDS:
        sub = cli.argparse.ArgumentParser().add_subparsers()
        load()(sub)
        assert tuple(sub.choices) == names, (load.__name__, tuple(sub.choices))
    every = [n for names, _ in cli.COMMANDS for n in names]
    assert len(every) == len(set(every))
    assert tuple(cli.build_parser(None)._subparsers._group_actions[0].choices) == tuple(every)


def test_a_command_imports_only_its_own_module():
    """``finsent db ...`` builds a parser of the storage commands only; help asked before a command, or an
    unknown command, registers every one (argparse then lists them all)."""
    assert cli._requested(["-v", "db", "status"]) == "db"
    assert cli._requested(["--help", "db"]) is None and cli._requested(["-h"]) is None
    assert cli._requested(None) is None
    only_db = cli.build_parser(["db", "status"])._subparsers._group_actions[0].choices
    assert tuple(only_db) == ("db", "sql", "rescore")
    for argv in (["-h", "db"], ["no-such-command"], []):
        assert len(cli.build_parser(argv)._subparsers._group_actions[0].choices) == 19, argv


def test_classify_imports_no_other_command_module():
    import subprocess
    import sys

    code = ("import sys; from stream.cli import build_parser; build_parser(['classify', '-'])\n"
            "print(sorted(m for m in sys.modules if m.endswith('.cli') or m in ('stream.demo', 'stream.plot')"
            " or m.startswith(('pydantic', 'pandas'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(cli.__file__).parents[1]).stdout
    assert out.strip() == "['model.cli', 'stream.cli']", out
