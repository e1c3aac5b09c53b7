"""Detection quality on generated days (ground-truth sentiment through the pure detector).

The figures over 50 days are printed by ``python -m alerts.quality --days 50``.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from alerts.detector import DetectorConfig
from alerts.quality import match_spikes, run_detector
from stream.base.config import AlertSettings
from stream.synthetic.generate import Spike, day_start, generate_stream, universe

CFG = DetectorConfig.from_settings(AlertSettings())  # the shipped defaults


@pytest.mark.parametrize("seed", range(5))
def test_a_calm_day_fires_no_alert(seed):
    d = run_detector(generate_stream(seed=seed, truth=True), CFG)
    assert d.alerts == [], [(a.scope_kind, a.scope, a.decision) for a in d.alerts]


def planted(seed: int) -> list[tuple[str, Spike]]:
    """Bursts above the minimum: quiet tickers from 5, mid from 8, busy from 12, one topic-wide."""
    rng = random.Random(f"test-planted:{seed}")
    cos = universe(200)
    plan = [("quiet", 5), ("quiet", 6), ("quiet", 8), ("quiet", 12), ("mid", 8), ("mid", 12), ("busy", 12)]
    pools = {"quiet": cos[100:], "mid": cos[20:60], "busy": cos[:10]}
    start = day_start()
    out = []
    for j, (tier, size) in enumerate(plan):
        co = rng.choice(pools[tier])
        at = start + timedelta(hours=4.5 + j * 1.5, minutes=rng.randint(0, 50), seconds=rng.randint(0, 59))
        out.append((tier, Spike(ticker=co.ticker, at=at, size=size)))
    out.append(("topic", Spike(topic="Energy, Oil", at=start + timedelta(hours=6, minutes=rng.randint(0, 50)), size=25)))
    return out


@pytest.mark.parametrize("seed", range(3))
def test_every_planted_burst_fires_exactly_one_alert_for_its_scope_within_one_window(seed):
    spikes = planted(seed)
    d = run_detector(generate_stream(seed=seed, truth=True, spikes=[s for _, s in spikes]), CFG)
    results, others = match_spikes(d.alerts, spikes, CFG.window_s)
    for r in results:
        assert len(r.matches) == 1, f"{r.tier} {r.spike}: {len(r.matches)} alerts"
        a = r.matches[0]
        assert (a.scope_kind, a.scope) == r.spike.scope
        # the alert's window holds the burst's start or end and closes at most one window after it ends
        assert a.window_start < r.spike.end.timestamp() and a.window_end > r.spike.at.timestamp()
        assert a.window_end <= r.spike.end.timestamp() + CFG.window_s
    assert others == [], [(a.scope_kind, a.scope, a.decision) for a in others]
