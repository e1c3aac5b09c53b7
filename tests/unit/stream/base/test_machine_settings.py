"""Environment variables are read in the settings module only; the machine paths keep their names."""

from __future__ import annotations

import ast
from pathlib import Path

from stream.base.config import MACHINE_ENV, machine_settings

ROOT = Path(__file__).resolve().parents[4]
PACKAGES = ("stream", "model", "storage", "alerts", "deploy")
# reads that stay where they are, each with its reason
ALLOWED = {
    "stream/base/config.py",  # the settings module
    "model/cpu.py",  # FINSENT_CPU_FEATURES: the model engineer's CPU feature override (issue 11)
    "model/engine.py",  # FINSENT_CPU_PATH: the model engineer's (issue 11)
    "model/torch_engine.py",  # OMP_NUM_THREADS (not ours): the model engineer's (issue 11)
    "model/ort.py",  # its ONNX cache override and OMP_NUM_THREADS: the model engineer's (issue 11)
}


def _env_reads(path: Path) -> list[int]:
    def is_environ(node) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "environ" and getattr(node.value, "id", None) == "os"

    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            f = node.func
            if (f.attr == "get" and is_environ(f.value)) or (f.attr == "getenv" and getattr(f.value, "id", None) == "os"):
                lines.append(node.lineno)
        elif isinstance(node, ast.Subscript) and is_environ(node.value) and isinstance(node.ctx, ast.Load):
            lines.append(node.lineno)
    return lines


def test_no_module_outside_the_settings_module_reads_the_environment():
    found = [f"{p.relative_to(ROOT)}:{line}" for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))
             if str(p.relative_to(ROOT)) not in ALLOWED for line in _env_reads(p)]
    assert found == []


def test_the_machine_variables_keep_their_documented_names():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for key in MACHINE_ENV.values():
        assert f"`{key}`" in readme, key
    env = {"FINSENT_KAFKA_HEAP": "-Xmx2g", "FINSENT_CACHE_DIR": "/c/finsent", "FINSENT_PG_BINDIR": "/pg/bin",
           "FINSENT_PG_HOME": "/pg/home", "FINSENT_DATA": "/data", "FINSENT_QUALITY_CACHE": "/q",
           "FINSENT_TEACHER_DIR": "/t", "FINSENT_EVENT_LOOP": "asyncio"}
    m = machine_settings(env)
    assert (m.kafka_heap, m.cache_dir, m.pg_bindir, m.pg_home, m.data_dir, m.quality_cache, m.teacher_dir,
            m.event_loop) == ("-Xmx2g", Path("/c/finsent"), Path("/pg/bin"), Path("/pg/home"), Path("/data"),
                              Path("/q"), Path("/t"), "asyncio")


def test_machine_defaults():
    m = machine_settings({"HOME": "/h", "XDG_CACHE_HOME": "/x"})
    assert m.cache_dir == Path("/x/finsent") and m.kafka_heap == "-Xms256m -Xmx768m"
    assert m.pg_bindir is m.pg_home is m.data_dir is m.teacher_dir is None and m.event_loop == "uvloop"
    assert machine_settings({"FINSENT_DATA": ""}).data_dir is None  # empty = unset
