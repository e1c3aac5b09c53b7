"""`finsent demo` (a shorter day) ends with the planted spike's alert and a chart."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from stream.process import REPO, settings_env

pytestmark = pytest.mark.slow


def test_demo_alerts_on_the_planted_spike_and_writes_a_chart(stack):
    res = subprocess.run([sys.executable, "-m", "stream.cli", "demo", "--items", "4000", "--timeout", "300"],
                         env=settings_env(stack.settings), cwd=REPO, capture_output=True, text=True, timeout=600)
    out = res.stdout
    assert res.returncode == 0, f"{out[-3000:]}\n{res.stderr[-3000:]}"
    spike = re.search(r"planted negative spike: (\w+)", out).group(1)
    assert re.search(rf"Negative news spike: {spike} \(ticker\)", out), out[-3000:]
    chart = Path(re.search(r"Chart of \w+: (\S+\.png)", out).group(1))
    assert chart.is_file() and chart.stat().st_size > 10_000
    assert "Top negative movers" in out and "finsent sql" in out
