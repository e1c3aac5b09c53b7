"""Spike detection over the real PostgreSQL: the database is the truth.

Articles are written with the real writer (ground-truth scores from the
generator, so no model is needed); ``AlertService.observe`` runs after each
batch as in the worker.
"""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg2

from alerts.detector import DetectorConfig, to_epoch
from alerts.quality import run_detector
from alerts.service import AlertService, list_alerts
from storage.writer import Writer
from stream.synthetic.generate import Spike, day_start, generate_stream, quiet_tickers
from tests.integration.workers import query
from tests.support.alert_streams import article_rows, event_time, store_and_observe

START = day_start(hour=7.0)
TICKER = quiet_tickers(k=1, seed=11)[0]
SPIKE = Spike(ticker=TICKER, at=START + timedelta(hours=2, minutes=7, seconds=13), size=10)


def day(spikes=(SPIKE,), start=START, hours=3.0, seed=4):
    return list(generate_stream(start, timedelta(hours=hours), spikes=list(spikes), seed=seed, truth=True))


def test_planted_spike_alerts_once_across_restarts_and_replays(pg):
    msgs = day()
    new = store_and_observe(pg, msgs, restart_every=3)  # a new AlertService (a restart) every 3 batches
    assert [(a.scope_kind, a.scope) for a in new] == [("ticker", TICKER)]
    a = new[0]
    assert a.window_start < SPIKE.end and a.window_end > SPIKE.at
    assert a.window_end <= SPIKE.end + timedelta(seconds=300)
    assert a.negative >= 5 and a.negative_share >= 0.4 and a.z >= 5.0
    assert a.delivery_status == "pending" and not a.replayed and a.attempts == 0
    spike_ids = {m["id"] for m in msgs if m["truth"]["event"] == "spike:0"}
    assert len(a.top_article_ids) == pg.alerts.top_articles and len(set(a.top_article_ids) & spike_ids) >= 3
    titles = {m["id"]: m["title"] for m in msgs}
    for i in a.top_article_ids[:3]:
        assert titles[i] in a.message
    assert a.title == f"Negative news spike: {TICKER}"

    # the database path decides exactly like the pure detector over the same counts
    ref = run_detector(msgs, DetectorConfig.from_settings(pg.alerts))
    assert [(f.scope_kind, f.scope, f.window_start) for f in ref.alerts] == [
        (a.scope_kind, a.scope, to_epoch(a.window_start))
    ]

    # the same items again, live or as a replay: nothing new, no count changed
    before = query(pg, "SELECT sum(articles), sum(negative) FROM sentiment_minute")
    assert store_and_observe(pg, msgs, batch=500) == []
    assert store_and_observe(pg, msgs, batch=700, replay=True, notify=False) == []
    assert query(pg, "SELECT sum(articles), sum(negative) FROM sentiment_minute") == before
    assert query(pg, "SELECT count(*) FROM alerts") == [(1,)]
    assert [x.id for x in list_alerts(pg)] == [a.id]


def test_a_lost_watermark_is_recovered_without_a_second_alert(pg):
    msgs = day()
    assert len(store_and_observe(pg, msgs)) == 1
    # simulate a crash between the alert commit and ... everything: the progress row is gone
    rows_ = query(pg, "SELECT stream FROM alert_progress")
    assert rows_ == [("live",)]
    conn = psycopg2.connect(pg.dsn, options=f"-c search_path={pg.schema}")
    with conn, conn.cursor() as cur:
        cur.execute("DELETE FROM alert_progress; DELETE FROM alert_sources")
    conn.close()
    # a fresh service re-evaluates the last catchup_s of windows: same decision, no new row
    wide = pg.replace(alerts=pg.alerts.replace(catchup_s=4 * 3600))
    with AlertService(wide) as svc:
        assert svc.observe(event_time(msgs[-1])) == []
    assert query(pg, "SELECT count(*) FROM alerts") == [(1,)]


def test_watermark_is_the_minimum_over_partitions(pg):
    msgs = day(spikes=())
    store_and_observe(pg, msgs[:10])  # creates the live stream rows
    with Writer(pg.dsn, pg.schema) as w:
        w.write_batch(article_rows(msgs))
    t_end = event_time(msgs[-1])
    lag = START + timedelta(minutes=40)

    def evaluated():
        return query(pg, "SELECT evaluated_until FROM alert_progress WHERE stream = 'live'")[0][0]

    with AlertService(pg) as svc:
        svc.observe({"p0": t_end, "p1": lag})
        assert evaluated() <= lag - timedelta(seconds=pg.alerts.lateness_s)
        svc.observe({"p2": None})  # assigned, nothing seen yet: holds the watermark too
        assert evaluated() <= lag
        svc.observe({"p1": t_end, "p2": t_end})
        assert evaluated() > t_end - timedelta(seconds=pg.alerts.lateness_s + 60)

    # partitions silent for idle_s stop holding the watermark back
    quick = pg.replace(alerts=pg.alerts.replace(idle_s=1.0))
    more = list(generate_stream(t_end, timedelta(minutes=30), seed=9, truth=True))
    with Writer(pg.dsn, pg.schema) as w:
        w.write_batch(article_rows(more))
    time.sleep(1.5)
    with AlertService(quick) as svc:
        svc.observe({"p1": event_time(more[-1])})  # p0 and p2 went quiet
        assert evaluated() > event_time(more[-1]) - timedelta(seconds=180)


def test_replay_without_notify_is_stored_not_to_be_sent(pg):
    new = store_and_observe(pg, day(), replay=True, notify=False)
    assert len(new) == 1
    assert new[0].replayed and new[0].delivery_status == "suppressed"
    assert "Found while replaying history." in new[0].message


def test_a_replay_of_an_earlier_period_starts_its_watermark_over(pg):
    later_start = START + timedelta(days=1)
    later_spike = Spike(ticker=TICKER, at=later_start + timedelta(hours=2, minutes=20), size=10)
    later = store_and_observe(pg, day([later_spike], start=later_start, seed=5), replay=True, notify=False)
    earlier = store_and_observe(pg, day(), replay=True, notify=True)  # event time jumps back a day
    assert [(a.scope, a.window_start.date()) for a in later] == [(TICKER, later_start.date())]
    assert [(a.scope, a.window_start.date()) for a in earlier] == [(TICKER, START.date())]
    assert earlier[0].delivery_status == "pending" and earlier[0].replayed
    gens = query(pg, "SELECT generation FROM alert_progress WHERE stream = 'replay'")
    assert gens == [(1,)]
