"""Time scales, incidents, the market-wide scope and story counting in the pure detector."""

from __future__ import annotations

import random

import pytest

from alerts.detector import DetectorConfig, Finding, joins_incident, parse_scale
from alerts.simulator import Detector, IncidentBook
from stream.base.config import AlertSettings, ConfigError

DAY = 86400
T0 = 1_741_000_000 - (1_741_000_000 % DAY)  # a UTC midnight
SCALES = DetectorConfig.scales_from_settings(AlertSettings())  # 5m, 1h, 1d (the shipped defaults)


def background(det: Detector, start: int, hours: float, per_min: float = 6.0, seed: int = 0) -> None:
    """A steady market over 60 tickers, ~15 % negative, nothing unusual."""
    rng = random.Random(seed)
    n = int(hours * 60 * per_min)
    for t in sorted(start + rng.randrange(int(hours * 3600)) for _ in range(n)):
        sent = "negative" if rng.random() < 0.15 else rng.choice(("neutral", "positive"))
        det.add(t, [f"T{rng.randrange(60):02d}"], "Markets", sent)


def negatives(det: Detector, ticker: str, times, first_seen: bool = True) -> None:
    for i, t in enumerate(times):
        det.add(t, [ticker], "Markets", "negative", -0.9, first_seen=first_seen or i == 0)


def run(det: Detector, until: int) -> list[Finding]:
    for t in range(T0, until + 1, 600):
        det.observe(t)
    return det.alerts


def test_default_scales_and_their_windows():
    assert [c.scale for c in SCALES] == ["5m", "1h", "1d"]
    five, hour, day = SCALES
    assert (five.window_s, five.step_s, five.scope_kinds) == (300, 60, ("ticker", "topic"))
    assert (hour.window_s, hour.step_s, hour.baseline_windows) == (3600, 300, 168)
    assert "all" in hour.scope_kinds and "all" in day.scope_kinds
    # the day scale is the UTC day so far: every evaluation of a day starts at its midnight
    assert day.anchored and day.window_start(T0 + 5 * 3600) == T0 == day.window_start(T0 + DAY)
    assert hour.window_start(T0 + 5 * 3600) == T0 + 4 * 3600
    custom = parse_scale("2h=7200/600/84/14400", AlertSettings())
    assert (custom.scale, custom.window_s, custom.step_s, custom.baseline_windows, custom.cooldown_s) == (
        "2h", 7200, 600, 84, 14400)
    with pytest.raises(ConfigError):
        parse_scale("1w", AlertSettings())
    with pytest.raises(ConfigError):
        parse_scale("x=abc", AlertSettings())


def test_a_story_that_builds_over_an_hour_fires_at_the_hour_scale_only():
    det = Detector(SCALES)
    background(det, T0, 10)
    start = T0 + 8 * 3600
    negatives(det, "SLOW", [start + i * 330 for i in range(10)])  # 10 negatives over 50 minutes
    got = run(det, T0 + 10 * 3600)
    assert [(f.scope, f.scale) for f in got] == [("SLOW", "1h")]
    f = got[0]
    assert f.window_end - f.window_start == 3600 and f.window_start < start + 3000 and f.window_end > start
    assert det.primary == got


def test_a_sharp_burst_fires_at_5m_and_the_hour_alert_joins_its_incident():
    det = Detector(SCALES)
    background(det, T0, 10)
    start = T0 + 8 * 3600 + 123
    negatives(det, "SHARP", [start + i * 15 for i in range(12)])
    got = run(det, T0 + 10 * 3600)
    assert {(f.scope, f.scale) for f in got} == {("SHARP", "5m"), ("SHARP", "1h")}
    assert [(f.scope, f.scale) for f in det.primary] == [("SHARP", "5m")]  # one notification
    (inc,) = det.incidents.incidents
    assert inc.scales == ["5m", "1h"] and len(inc.alerts) == 2


def test_a_day_of_steady_bad_news_fires_at_the_day_scale_once():
    det = Detector(SCALES)
    background(det, T0, 24 * 9, per_min=1.0)
    day9 = T0 + 8 * DAY
    negatives(det, "DRIP", [day9 + 3600 * h + 600 for h in range(2, 14)])  # one an hour, 12 in the day
    got = [f for f in run(det, T0 + 9 * DAY + 3600) if f.scope == "DRIP"]
    assert [(f.scope, f.scale) for f in got] == [("DRIP", "1d")]
    f = got[0]
    assert f.window_start == day9 and f.window_end < day9 + DAY and f.window_end % 3600 == 0
    assert f.decision.negative >= 4  # the day scale's minimum


def test_the_whole_market_alerts_at_the_hour_scale():
    det = Detector(SCALES)
    background(det, T0, 10, per_min=6.0)
    rng = random.Random(5)
    start = T0 + 8 * 3600
    for i in range(360):  # a sell-off: 6 negative articles a minute for an hour, spread over every ticker
        det.add(start + i * 10, [f"T{rng.randrange(60):02d}"], "Markets", "negative", -0.8)
    got = run(det, T0 + 10 * 3600)
    assert ("all", "all", "1h") in {(f.scope_kind, f.scope, f.scale) for f in got}
    assert not any(f.scope_kind == "all" and f.scale == "5m" for f in got)  # 'all' is watched at 1h and 1d


def test_detection_counts_stories_not_copies():
    def fired(first_seen: bool) -> list:
        det = Detector(SCALES[:1])
        background(det, T0, 3)
        negatives(det, "ECHO", [T0 + 2 * 3600 + i * 20 for i in range(8)], first_seen=first_seen)
        return [(f.scope, f.decision.negative == f.negative_articles >= 5) for f in run(det, T0 + 3 * 3600)]

    assert fired(True) == [("ECHO", True)]
    assert fired(False) == []  # one story retweeted 7 times is not a spike
    det = Detector(DetectorConfig(count_stories=False))
    background(det, T0, 3)
    negatives(det, "ECHO", [T0 + 2 * 3600 + i * 20 for i in range(8)], first_seen=False)
    assert [f.scope for f in run(det, T0 + 3 * 3600)] == ["ECHO"]  # counting copies, it would fire


def test_incident_grouping_rules():
    assert joins_incident(100, 400, 0, 300, gap_s=0)  # overlaps
    assert joins_incident(3000, 3300, 0, 300, gap_s=3600)  # follows within the gap
    assert not joins_incident(4000, 4300, 0, 300, gap_s=3600)  # a new burst later
    book = IncidentBook(gap_s=3600)
    def f(ws, we, scale, scope="X"):
        from alerts.detector import Decision

        return Finding("ticker", scope, ws, we, Decision(True, "fired", 5, 5, 1, 0.1, 0.3, 9, 10), scale=scale)

    assert book.add(f(0, 300, "5m"))[1]
    assert not book.add(f(-3300, 300, "1h"))[1]
    assert book.add(f(0, 300, "5m", scope="Y"))[1]  # another scope: its own incident
    assert not book.add(f(0, 3600 * 5, "1d"))[1]
    assert book.add(f(3600 * 7, 3600 * 7 + 300, "5m"))[1]
    assert [(i.scope, i.scales) for i in book.incidents] == [("X", ["5m", "1h", "1d"]), ("Y", ["5m"]), ("X", ["5m"])]


def test_scales_are_named_records_whose_thresholds_come_from_the_settings_unless_the_scale_sets_them():
    from alerts.detector import SCALES as RECORDS, THRESHOLDS, five_minutes

    hour = RECORDS["1h"]
    assert (hour.window_s, hour.step_s, hour.z_threshold, hour.ewma_alpha) == (3600, 300, 6.0, None)
    a = AlertSettings(ewma_alpha=0.2, z_threshold=4.5, min_negative=3)
    cfg = parse_scale("1h", a)
    assert (cfg.ewma_alpha, cfg.z_threshold, cfg.min_negative) == (0.2, 6.0, 3)  # settings, save the scale's own
    five = parse_scale("5m", a)
    assert all(getattr(five, k) == getattr(a, k) for k in THRESHOLDS)  # one source: the [alerts] section
    assert five_minutes(a).window_s == a.window_s and DetectorConfig.from_settings(a) == five
