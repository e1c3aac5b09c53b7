"""The pure spike-detection core: baseline, z, rules, windows, cooldown, watermark."""

from __future__ import annotations

import math
import random

import pytest

from alerts.detector import (
    Baseline,
    DetectorConfig,
    decide,
    ewma_baseline,
    find_alerts,
    history_counts,
    in_cooldown,
    poisson_z,
    surprise_z,
    tail_probability,
)
from alerts.simulator import Detector, MemoryStore
from stream.base.config import AlertSettings, ConfigError

T0 = 1_741_000_000 - (1_741_000_000 % 3600)  # an hour boundary (epoch seconds)
CFG = DetectorConfig()


def poisson_tail_bruteforce(n: int, lam: float) -> float:
    return 1.0 - sum(math.exp(-lam) * lam**k / math.factorial(k) for k in range(n))


# -- baseline and z -----------------------------------------------------------------
def test_tail_probability_matches_poisson():
    for lam in (0.05, 0.3, 1.0, 4.0, 12.0):
        for n in (0, 1, 3, 5, 9, 20):
            want = poisson_tail_bruteforce(n, lam)
            assert tail_probability(n, lam, lam) == pytest.approx(want, rel=1e-6, abs=1e-15)


def test_tail_probability_overdispersed_is_heavier():
    assert tail_probability(8, 1.0, 4.0) > tail_probability(8, 1.0, 1.0)
    # tiny tails keep their precision (summed upwards, not 1 - cdf)
    assert 0 < tail_probability(12, 0.09, 0.09) < 1e-15


def test_poisson_z_is_calibrated():
    # P(X >= 5 | 1) = 0.00366 -> z = 2.68: five against an expected one is not a 4-sigma event
    assert poisson_z(5, 1.0) == pytest.approx(2.68, abs=0.01)
    assert poisson_z(5, 0.09) > 5.0
    assert poisson_z(0, 1.0) <= 0.0


def test_surprise_z_is_the_stricter_of_the_two():
    b = Baseline(mean=1.0, std=3.0, windows=20)  # bursty scope: EWMA spread is wide
    assert surprise_z(8, b) == pytest.approx((8 - 1.0) / 3.0)
    b = Baseline(mean=1.0, std=1.0, windows=20)  # Poisson-like: the exact tail is stricter
    assert surprise_z(5, b) == pytest.approx(poisson_z(5, 1.0))


def test_ewma_baseline_floors_and_scales_with_volume():
    empty = ewma_baseline([], 100, CFG)
    assert empty.mean == pytest.approx(CFG.min_std**2) and empty.windows == 0
    # a scope with 2 negatives per 100 market articles: expected 4 when the market doubles
    flat = ewma_baseline([(2, 100)] * 30, 200, CFG)
    assert flat.mean == pytest.approx(4.0)
    assert flat.std == pytest.approx(2.0)  # variance floored at the mean (Poisson)
    # the newest windows weigh most
    rising = ewma_baseline([(0, 100)] * 20 + [(4, 100)] * 5, 100, CFG)
    falling = ewma_baseline([(4, 100)] * 5 + [(0, 100)] * 20, 100, CFG)
    assert rising.mean > 1.5 > falling.mean
    quiet = ewma_baseline([(0, 100)] * 50, 100, CFG)
    assert quiet.mean == pytest.approx(CFG.min_std**2)


def test_decide_reasons_in_order():
    hist = [(0, 100)] * 20
    assert decide(10, 4, hist, 100, False, CFG).reason == "below_min"
    assert decide(20, 6, hist, 100, False, CFG).reason == "low_share"
    assert decide(8, 6, hist[:3], 100, False, CFG).reason == "warmup"
    busy = [(6, 100)] * 20
    assert decide(8, 7, busy, 100, False, CFG).reason == "not_unusual"
    assert decide(8, 7, hist, 100, True, CFG).reason == "cooldown"
    d = decide(8, 7, hist, 100, False, CFG)
    assert d.fire and d.reason == "fired" and d.z >= CFG.z_threshold
    assert d.share == pytest.approx(7 / 8)


def test_cooldown_is_symmetric_and_ignores_the_same_window():
    starts = [T0]
    assert in_cooldown(T0 + 60, starts, 1800)
    assert in_cooldown(T0 - 1740, starts, 1800)
    assert not in_cooldown(T0 + 1800, starts, 1800)
    assert not in_cooldown(T0, starts, 1800)


def test_history_skips_unobserved_windows_and_zero_fills_observed_ones():
    cfg = DetectorConfig(baseline_windows=4, warmup_windows=1)
    ws = T0
    volume = {ws - 300: 5, ws - 600 + 60: 3, ws - 1200: 1}  # window -900..-600 unobserved
    negatives = {ws - 300 + 120: 2, ws - 1200: 1}
    assert history_counts(negatives, volume, ws, cfg) == [(1, 1), (0, 3), (2, 5)]


def test_config_validation():
    with pytest.raises(ConfigError):
        DetectorConfig(step_s=90)
    with pytest.raises(ConfigError):
        DetectorConfig(window_s=300, step_s=120)
    with pytest.raises(ConfigError):
        DetectorConfig(scope_kinds=("sector",))
    cfg = DetectorConfig.from_settings(AlertSettings())
    assert cfg.window_s == 300 and cfg.step_s == 60


# -- streams of counts ------------------------------------------------------------------
def background(det: Detector, start: int, minutes: int, seed: int = 0, per_min: int = 30) -> None:
    """A steady market: many tickers, ~15 % negative, nothing unusual."""
    rng = random.Random(seed)
    for m in range(minutes):
        for _ in range(per_min):
            t = start + m * 60 + rng.randrange(60)
            tk = f"T{rng.randrange(80):02d}"
            sent = "negative" if rng.random() < 0.15 else rng.choice(("neutral", "positive"))
            det.add(t, [tk], "Markets", sent)


def burst(det: Detector, ticker: str, at: int, size: int, spread_s: int = 150) -> None:
    for i in range(size):
        det.add(at + i * spread_s // size, [ticker], "Markets", "negative", -0.9)


def test_burst_fires_once_for_the_right_scope_and_only_after_the_watermark():
    det = Detector(DetectorConfig(), lateness_s=60)
    background(det, T0, 120)
    burst(det, "ZZZ", T0 + 90 * 60 + 10, 8)
    # nothing is evaluated until the watermark passes the window end
    assert det.advance(T0 + 90 * 60) == []
    out = det.advance(T0 + 120 * 60)
    assert [(f.scope_kind, f.scope) for f in out] == [("ticker", "ZZZ")]
    f = out[0]
    assert f.window_start <= T0 + 90 * 60 + 10 < f.window_end
    assert f.decision.negative >= CFG.min_negative and f.decision.z >= CFG.z_threshold
    # advancing again (or re-running) adds nothing
    assert det.advance(T0 + 180 * 60) == []


def test_burst_across_a_tumbling_boundary_still_fires():
    det = Detector(DetectorConfig(), lateness_s=60)
    background(det, T0, 120, seed=3)
    # 6 negatives from 2.5 min before to 2.5 min after a 5-minute boundary: 3 + 3 in tumbling windows
    burst(det, "EDGE", T0 + 90 * 60 - 150, 6, spread_s=300)
    out = det.advance(T0 + 125 * 60)
    assert [f.scope for f in out] == ["EDGE"]


def test_cooldown_suppresses_the_second_burst_within_30_minutes():
    det = Detector(DetectorConfig(), lateness_s=60)
    background(det, T0, 200, seed=5)
    burst(det, "CCC", T0 + 60 * 60, 8)
    burst(det, "CCC", T0 + 75 * 60, 8)  # inside the cooldown
    burst(det, "CCC", T0 + 140 * 60, 10)  # after it
    out = det.advance(T0 + 200 * 60)
    starts = [f.window_start for f in out if f.scope == "CCC"]
    assert len(starts) == 2 and starts[1] - starts[0] >= CFG.cooldown_s


def test_warmup_after_start_and_after_a_gap():
    det = Detector(DetectorConfig(), lateness_s=60)
    burst(det, "EARLY", T0 + 60, 8)  # the first minutes of the stream: no baseline yet
    background(det, T0, 20, seed=1)
    assert det.advance(T0 + 20 * 60) == []


def test_same_decisions_whatever_the_watermark_steps():
    """Restart/replay safety of the core: evaluating in other steps gives the same alerts."""

    def run(step_minutes: int) -> list:
        det = Detector(DetectorConfig(), lateness_s=60)
        background(det, T0, 180, seed=9)
        burst(det, "AAA", T0 + 50 * 60, 7)
        burst(det, "BBB", T0 + 100 * 60, 12)
        for m in range(0, 181, step_minutes):
            det.advance(T0 + m * 60)
        det.advance(T0 + 240 * 60)
        return [(f.scope_kind, f.scope, f.window_start) for f in det.alerts]

    one = run(1)
    assert {s for _, s, _ in one} == {"AAA", "BBB"}
    assert run(7) == one == run(60) == run(1000)


def test_find_alerts_respects_alerts_already_stored():
    det = Detector(DetectorConfig(), lateness_s=60)
    background(det, T0, 120, seed=2)
    burst(det, "DUP", T0 + 90 * 60, 8)
    first = find_alerts(det.store, T0 + 60, T0 + 120 * 60, det.cfg)
    assert len(first) == 1
    det.store.record(first[0])
    again = find_alerts(det.store, T0 + 60, T0 + 120 * 60, det.cfg)
    # neither the stored window (already alerted) nor a neighbouring one (cooldown) comes back
    assert again == []
    # a different scale is not held back by it
    other = find_alerts(det.store, T0 + 60, T0 + 120 * 60, DetectorConfig(scale="other"))
    assert [(f.scope, f.scale) for f in other] == [("DUP", "other")]


def test_memory_store_queries():
    st = MemoryStore()
    st.add(T0, "ticker", "X", 3, 2, -1.0)
    st.add(T0, "ticker", "X", 1, 1, -0.5)
    st.add(T0, "all", "all", 4, 3)
    st.add(T0 + 60, "topic", "Macro", 2, 0)
    assert list(st.minute_counts(T0, T0 + 60, ("ticker",))) == [(T0, "ticker", "X", 4, 3, -1.5)]
    assert st.negative_history("ticker", "X", T0, T0 + 120) == {T0: 3}
    assert st.market_volume(T0 - 60, T0 + 120) == {T0: 4}
