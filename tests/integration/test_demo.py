"""`finsent demo` (a shorter day) ends with the planted spike's alert, the slow story's hour-scale alert and a chart."""

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from stream.dashboard.serve import free_port
from stream.process import REPO, settings_env

pytestmark = pytest.mark.slow


def test_demo_alerts_on_the_planted_spike_and_writes_a_chart(stack):
    env = {**settings_env(stack.settings), "FINSENT_DASHBOARD_PORT": str(free_port())}
    try:
        res = subprocess.run([sys.executable, "-m", "stream.cli", "demo", "--items", "4000", "--timeout", "300"],
                             env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
        # the dashboard URL it prints opens on the planted spike's alert
        m = re.search(r"the planted spike's alert: +(http://127\.0\.0\.1:\d+)/alert/(\d+)", res.stdout)
        assert m, res.stdout[-3000:]
        with urllib.request.urlopen(m.group(0).split()[-1], timeout=20) as r:
            assert r.status == 200 and f'data-alert-id="{m.group(2)}"' in r.read().decode()
        with urllib.request.urlopen(f"{m.group(1)}/api/alerts/{m.group(2)}", timeout=20) as r:
            dashboard_alert = json.load(r)["alert"]
        # the two-company headline it names is on each company's ticker page, scored toward that company
        title = re.search(r'one headline, two fortunes: "(.+)"', res.stdout).group(1)
        pages = re.findall(r"on (\w+)'s page: +(http://\S+)", res.stdout)
        assert len(pages) == 2 and pages[0][0] != pages[1][0], res.stdout[-3000:]
        shown = {}
        for ticker, url in pages:
            query = url.split("?", 1)[1]
            with urllib.request.urlopen(f"{m.group(1)}/api/articles?kind=ticker&scope={ticker}&{query}", timeout=20) as r:
                shown[ticker] = [a for a in json.load(r)["articles"] if a["title"] == title]
            with urllib.request.urlopen(url, timeout=20) as r:
                assert r.status == 200 and f'data-scope="{ticker}"' in r.read().decode()
    finally:
        subprocess.run([sys.executable, "-m", "stream.cli", "dashboard", "--stop"], env=env, cwd=REPO, timeout=60)
    out = res.stdout
    assert res.returncode == 0, f"{out[-3000:]}\n{res.stderr[-3000:]}"
    spike = re.search(r"planted negative spike: (\w+)", out).group(1)
    assert re.search(rf"Negative news spike: {spike} \(ticker\)", out), out[-3000:]
    # the slow story (ten negatives over 50 minutes) alerts at the hour scale
    slow = re.search(r"slow story: (\w+)", out).group(1)
    assert re.search(rf"Negative news spike: {slow} \(ticker\) \[1h\]", out), out[-3000:]
    chart = Path(re.search(r"Chart of \w+: (\S+\.png)", out).group(1))
    assert chart.is_file() and chart.stat().st_size > 10_000
    assert "Top negative movers" in out and "finsent sql" in out
    assert dashboard_alert["scope"] == spike and spike in dashboard_alert["title"]
    # per-company sentiment: the sentiment toward each company, as printed and as its page shows it
    assert "Whose news is it?" in out
    for ticker, rows in shown.items():
        assert len(rows) == 1, (ticker, title)
        printed = re.search(rf"^      {ticker}: (negative|neutral|positive) ([+-][\d.]+) \((\w+)\)", out, re.M)
        assert printed, out[-3000:]
        assert (rows[0]["ticker_sentiment"], rows[0]["ticker_sentiment_source"]) == (printed.group(1), printed.group(3))
