"""No function of the runtime packages is longer than 80 lines (issue 24: subsystems as objects, not closures)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from longest_functions import functions

LIMIT = 80


def test_no_runtime_function_is_longer_than_80_lines():
    long = [f"{where} ({n} lines)" for n, where in functions() if n > LIMIT]
    assert not long, "split these: " + "; ".join(long)
