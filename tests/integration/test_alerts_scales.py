"""Every time scale over the real PostgreSQL: exactly once across restarts, incidents, story counts.

Nine days of a sparse synthetic market (the day scale needs a week of history)
are written with the real writer; ``AlertService.observe`` runs after each
batch with a restart every two batches.  Three stories are planted on the
ninth day: DRIP (one negative an hour: the day scale only), SLOW (ten over 50
minutes: the hour scale) and SHARP (twelve in three minutes: 5 minutes, then
the hour and the day join its incident).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from alerts.detector import DetectorConfig, to_epoch
from alerts.quality import run_detector
from storage.writer import Writer
from tests.integration.workers import query
from tests.support.alert_streams import article_rows, store_and_observe

DAY0 = datetime(2025, 3, 3, tzinfo=UTC)
DAY9 = DAY0 + timedelta(days=8)


def msg(i: int, t: datetime, ticker: str, sentiment: str, title: str | None = None) -> dict:
    return {"id": f"m{i}", "published_at": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "tickers": [ticker],
            "title": title or f"{ticker} news item {i}", "truth": {"sentiment": sentiment, "topic": "Markets"}}


def stream() -> list[dict]:
    rng = random.Random(3)
    out = []
    end = DAY9 + timedelta(hours=20)
    t = DAY0
    while t < end:  # ~1 article every 2 minutes over 30 tickers
        t += timedelta(seconds=rng.randrange(1, 240))
        sent = "negative" if rng.random() < 0.15 else rng.choice(("neutral", "positive"))
        out.append(msg(len(out), t, f"T{rng.randrange(30):02d}", sent))
    for h in range(2, 14):
        out.append(msg(len(out), DAY9 + timedelta(hours=h, minutes=10), "DRIP", "negative", f"Drip setback number {h}"))
    for k in range(10):
        out.append(msg(len(out), DAY9 + timedelta(hours=9, seconds=300 * k + 7), "SLOW", "negative",
                       f"Slow story chapter {k} of a long decline"))
    for k in range(12):
        out.append(msg(len(out), DAY9 + timedelta(hours=15, seconds=15 * k + 3), "SHARP", "negative",
                       f"Sharp shock report {k}: plant explosion"))
    return sorted(out, key=lambda m: m["published_at"])


def test_every_scale_alerts_exactly_once_across_restarts_and_groups_incidents(pg):
    msgs = stream()
    new = store_and_observe(pg, msgs, batch=400, restart_every=2)
    planted = ("DRIP", "SLOW", "SHARP")
    got = {(a.scope, a.scale) for a in new if a.scope in planted}
    assert got == {("DRIP", "1d"), ("SLOW", "1h"), ("SLOW", "1d"), ("SHARP", "5m"), ("SHARP", "1h"), ("SHARP", "1d")}
    # the day scale (z >= 3, no share floor) may also see the ninth day's extra negatives market-wide,
    # or a noisy background ticker; nothing else fires at 5 minutes or an hour
    assert all(a.scale == "1d" for a in new if a.scope not in planted)

    # the database path decides like the pure detector over the same counts, at every scale
    ref = run_detector(msgs, DetectorConfig.scales_from_settings(pg.alerts))
    assert sorted((f.scope, f.scale, f.window_start) for f in ref.alerts) == sorted(
        (a.scope, a.scale, to_epoch(a.window_start)) for a in new)

    # one incident per story: the first alert is sent, the others are grouped under it
    by_scope = {}
    for a in sorted(new, key=lambda a: a.id):
        by_scope.setdefault(a.scope, []).append(a)
    for scope, alerts in by_scope.items():
        first, *rest = alerts
        assert first.delivery_status == "pending" and first.incident_id == first.id, scope
        assert all(r.delivery_status == "grouped" and r.incident_id == first.id for r in rest), scope
    assert by_scope["SHARP"][0].scale == "5m"
    inc = query(pg, "SELECT scope, scales, alerts FROM alert_incidents WHERE scope IN ('DRIP', 'SLOW', 'SHARP')"
                   " ORDER BY scope")
    assert [(s, sorted(sc), n) for s, sc, n in inc] == [
        ("DRIP", ["1d"], 1), ("SHARP", ["1d", "1h", "5m"], 3), ("SLOW", ["1d", "1h"], 2)]
    day = next(a for a in new if a.scope == "DRIP")
    assert day.window_start == DAY9 and day.window_end <= DAY9 + timedelta(days=1)
    assert day.explanation.startswith("[1d] ") and "Drip setback" in day.explanation
    assert day.negative_stories >= 4 and day.stories >= day.negative_stories

    # everything again, live and as a replay: no new alert at any scale, no count changed
    before = query(pg, "SELECT sum(articles), sum(stories) FROM sentiment_minute")
    assert store_and_observe(pg, msgs, batch=900, restart_every=1) == []
    assert store_and_observe(pg, msgs, batch=700, replay=True, notify=False) == []
    assert query(pg, "SELECT sum(articles), sum(stories) FROM sentiment_minute") == before
    assert query(pg, "SELECT count(*) FROM alerts") == [(len(new),)]
    latest = query(pg, "SELECT scale, incident_id, explanation FROM latest_alerts WHERE scope = 'SHARP'")
    assert sorted(r[0] for r in latest) == ["1d", "1h", "5m"] and len({r[1] for r in latest}) == 1


def test_copies_count_as_articles_not_as_stories(pg):
    msgs = [msg(i, DAY0 + timedelta(minutes=i), "ECHO", "negative", "Echo recalls its cars") for i in range(4)]
    rows_ = article_rows(msgs)
    for r in rows_[1:]:
        r.story_id, r.story_first = rows_[0].id, False
    with Writer(pg.dsn, pg.schema) as w:
        w.write_batch(rows_)
    assert query(pg, "SELECT sum(articles), sum(negative), sum(stories), sum(negative_stories) FROM trend_daily"
                    " WHERE scope_kind = 'ticker' AND scope = 'ECHO'") == [(4, 4, 1, 1)]
    assert query(pg, "SELECT count(DISTINCT story_id), count(*) FILTER (WHERE story_first) FROM articles") == [(1, 1)]
