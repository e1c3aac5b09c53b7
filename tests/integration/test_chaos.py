"""A small chaos soak (bench/chaos.py) on its own stack: kill -9s, a PostgreSQL restart, a broker
restart and a receiver outage; nothing lost, nothing counted twice, every alert delivered."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from stream.process import REPO

pytestmark = pytest.mark.slow


def test_small_chaos_soak_loses_nothing_and_delivers_every_alert(tmp_path):
    out = tmp_path / "chaos.json"
    res = subprocess.run(
        [sys.executable, "bench/chaos.py", "--items", "1500", "--kills", "2", "--pg-restarts", "1",
         "--broker-restarts", "1", "--outage-s", "5", "--kafka-port", "29592", "--pg-port", "29632",
         "--timeout-s", "480", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["articles"] == figures["bucket_sum_all"] == 1500
    assert figures["alerts"] >= 1 and figures["alerts_delivered"] == figures["alerts"]
    assert figures["kills"] == 2 and figures["pg_restarts"] == 1 and figures["broker_restarts"] == 1
