"""``finsent ingest`` with no arguments polls the shipped catalogue, pointed at a feed server on 127.0.0.1
by a finsent.toml of catalogue overrides, into the real broker; a real worker stores every kind of source
with its tickers (EDGAR's by CIK, its topic from the 8-K item table, its bankruptcy flag in the alert
text); ``finsent status``, ``finsent ingest --list`` and the dashboard's API show the feeds' health, a
failing feed as unhealthy.

The feed documents are written by hand (tests/support/feed_documents.py): no real copy could be fetched
on the machines these tests run on.  Nothing reaches an address off the loopback: the child processes get
a proxy on a closed loopback port for every other host, and the server sees a request for every feed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from alerts.detector import Decision, DetectorConfig, Finding
from alerts.service import render
from storage import alerts as alert_sql
from storage.db import connect
from stream.base.config import load_settings
from stream.dashboard.serve import ServerThread
from stream.dashboard.server import create_app
from stream.process import REPO
from tests.integration.workers import Worker, query, wait_for
from tests.support.feed_documents import (
    ATOM_NEWS,
    BUSINESSWIRE,
    EDGAR_6K,
    EDGAR_8K,
    EDGAR_8K_EXPECTED,
    FED_PRESS,
    GLOBENEWSWIRE,
    PRNEWSWIRE,
)
from tests.support.feed_server import FeedServer

UA = "finsent-tests feeds-tests@example.org"
# every feed the shipped catalogue enables: (path on the test server, document, conditional GET header)
SHIPPED = {
    "sec-edgar-8k": ("/cgi-bin/browse-edgar?action=getcurrent&type=8-K&output=atom", EDGAR_8K, {"etag": '"8k-1"'}),
    "sec-edgar-6k": ("/cgi-bin/browse-edgar?action=getcurrent&type=6-K&output=atom", EDGAR_6K, {}),
    "globenewswire-public-companies": ("/gnw/public-companies.rss", GLOBENEWSWIRE, {"etag": '"gnw-1"'}),
    "prnewswire-all": ("/rss/news-releases-list.rss", PRNEWSWIRE,
                       {"last_modified": "Thu, 01 Aug 2024 14:31:00 GMT"}),
    "businesswire-all": ("/rss/home/", BUSINESSWIRE, {}),
    "federal-reserve-press": ("/feeds/press_all.xml", FED_PRESS, {}),
}
EXPECTED_ITEMS = 4 + 1 + 2 + 1 + 1 + 1 + 1  # 8-K filings, 6-K, GlobeNewswire, PRN, Business Wire, Fed, the Atom feed


@pytest.fixture
def feed_server():
    with FeedServer() as srv:
        for name, (path, doc, cache) in SHIPPED.items():
            kind = "application/atom+xml" if "edgar" in name else "application/rss+xml"
            srv.serve(path, doc.encode("latin-1" if "edgar" in name else "utf-8"), content_type=kind, **cache)
        srv.serve("/desk.atom", ATOM_NEWS, content_type="application/atom+xml")
        srv.serve("/down.rss", "internal error", status=500)
        yield srv


def write_config(settings, srv: FeedServer, path: Path) -> Path:
    """finsent.toml: the test's stack, schema and topics, and the catalogue pointed at the test server (an Atom
    feed and a failing feed added)."""
    top = {"kafka": settings.kafka_bootstrap, "database_url": settings.dsn, "schema": settings.schema,
           "topic_raw": settings.topic_raw, "topic_scored": settings.topic_scored,
           "topic_deadletter": settings.topic_deadletter, "app_id": settings.app_id,
           "state_dir": str(path.parent / "state")}
    lines = [f"{k} = {json.dumps(v)}" for k, v in top.items()]
    lines += ["", "[feeds]", f"user_agent = {json.dumps(UA)}", "unhealthy_after = 1", "host_rate = 50", ""]
    for name, (p, _, _) in SHIPPED.items():
        lines += [f"[feeds.catalogue.{name}]", f"url = {json.dumps(srv.url(p))}", ""]
    lines += ["[feeds.catalogue.test-desk-atom]", f"url = {json.dumps(srv.url('/desk.atom'))}", 'kind = "atom"',
              'title = "Example Business Desk"', "",
              "[feeds.catalogue.test-down]", f"url = {json.dumps(srv.url('/down.rss'))}", 'kind = "rss"', ""]
    path.write_text("\n".join(lines))
    return path


def run(config: Path, *args: str) -> subprocess.CompletedProcess:
    """``finsent ARGS`` reading only ``config`` (no inherited FINSENT_ variable), any host but the loopback
    sent to a closed loopback port."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("FINSENT_") and "PROXY" not in k.upper()}
    env.update(FINSENT_CONFIG=str(config), PYTHONUNBUFFERED="1", HTTP_PROXY="http://127.0.0.1:9",
               HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="127.0.0.1,localhost")
    return subprocess.run([sys.executable, "-m", "stream.cli", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_the_catalogue_is_what_this_test_overrides():
    """If the shipped catalogue enables another feed, this test must point it at the test server too."""
    enabled = set(load_settings({}).feeds.enabled())
    assert enabled == set(SHIPPED)


def test_ingest_the_catalogue_into_stored_articles_with_feed_health(settings, feed_server, tmp_path):
    config = write_config(settings, feed_server, tmp_path / "finsent.toml")
    first = run(config, "ingest", "--once")
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    for name, n in (("sec-edgar-8k", 4), ("sec-edgar-6k", 1), ("globenewswire-public-companies", 2),
                    ("prnewswire-all", 1), ("businesswire-all", 1), ("federal-reserve-press", 1), ("test-desk-atom", 1)):
        assert f"{name}: {n} new, 0 invalid" in out, out
    assert "test-down: UNHEALTHY (http_500: HTTP 500" in out
    for path, _, _ in SHIPPED.values():  # every feed really came from the loopback server, with our User-Agent
        hits = feed_server.requests_to(path)
        assert len(hits) == 1 and hits[0].headers["user-agent"] == UA, path

    worker = Worker(settings, tmp_path / "worker.log", "--no-alerts").start()
    try:
        wait_for(lambda: query(settings, "SELECT count(*) FROM articles")[0][0] >= EXPECTED_ITEMS, 240,
                 "the ingested items stored", worker)
    finally:
        worker.stop()
    rows = {r[0]: r[1:] for r in query(settings, "SELECT id, tickers, topic, topic_score, ticker_links, extra, source "
                                                 "FROM articles")}
    assert len(rows) == EXPECTED_ITEMS
    for item_id, (tickers, topic, flags) in EDGAR_8K_EXPECTED.items():
        got_tickers, got_topic, score, links, extra, source = rows[item_id]
        assert sorted(got_tickers) == tickers and (got_topic, score) == (topic, 1.0), item_id
        assert extra.get("flags") == flags and source == "SEC EDGAR 8-K" and extra["feed"] == "sec-edgar-8k"
        if tickers:
            assert links[0]["rule"] == "cik" and links[0]["ticker"] == tickers[0]
    assert rows["sec-0000320193-24-000081"][3][0]["text"] == "Apple"
    assert rows["sec-0001193125-24-190001"][0] == ["TM"]  # the 6-K: by CIK too; its topic is the model's
    by_feed = {}
    for tickers, _, _, links, extra, _ in rows.values():
        by_feed.setdefault(extra["feed"], []).append((sorted(tickers), {lk["rule"] for lk in links}))
    assert set(by_feed) == set(SHIPPED) | {"test-desk-atom"}  # every kind of source: edgar, rss, atom
    assert sorted(t for t, _ in by_feed["globenewswire-public-companies"]) == [["ABT"], ["WFC"]]
    assert by_feed["prnewswire-all"][0][0] == ["CAT"] and "exchange" in by_feed["prnewswire-all"][0][1]
    assert by_feed["businesswire-all"][0][0] == ["MSFT"] and by_feed["test-desk-atom"][0][0] == ["KO"]

    # the alert text of a spike in the bankruptcy's topic shows the flag of its source
    with connect(settings.dsn, settings.schema) as conn, conn.cursor() as cur:
        cur.execute("UPDATE articles SET sentiment = 'negative', p_negative = 0.99 WHERE id = 'sec-0001999999-24-000004'")
        conn.commit()
        heads = alert_sql.headlines(cur, "topic", "Legal, Regulation", datetime(2024, 8, 1, tzinfo=UTC),
                                    datetime(2024, 8, 2, tzinfo=UTC), 5)
    start = int(datetime(2024, 8, 1, 20, tzinfo=UTC).timestamp())
    finding = Finding("topic", "Legal, Regulation", start, start + 300,
                      Decision(True, "fired", articles=1, negative=1, share=1.0, baseline=0.1, std=0.3, z=6.0, history=40),
                      score_sum=-0.9)
    _, body = render(finding, heads, DetectorConfig(), replayed=False)
    assert "1. [BANKRUPTCY] [DEBT_ACCELERATION] Zorblax Widgets files an 8-K on bankruptcy or receivership" in body
    assert "flagged by its source: bankruptcy, debt_acceleration" in body

    # a second poll: nothing new (304 where the server validates, seen ids elsewhere); the failing feed waits
    second = run(config, "ingest", "--once")
    assert second.returncode == 0, second.stderr
    assert "sec-edgar-8k: not modified" in second.stdout and "prnewswire-all: not modified" in second.stdout
    assert "businesswire-all: 0 new, 0 invalid" in second.stdout and "sec-edgar-6k: 0 new" in second.stdout
    assert "test-down: skipped, waiting until" in second.stdout and len(feed_server.requests_to("/down.rss")) == 1
    assert feed_server.requests_to(SHIPPED["sec-edgar-8k"][0])[1].headers["if-none-match"] == '"8k-1"'

    # feed health where people look: finsent status (text and JSON), ingest --list, the dashboard's API
    status = run(config, "status")
    assert "feeds     8 polled, 1 failing or unhealthy" in status.stdout, status.stdout + status.stderr
    line = next(ln for ln in status.stdout.splitlines() if ln.strip().startswith("test-down"))
    assert "UNHEALTHY" in line and "http_500: HTTP 500" in line
    line = next(ln for ln in status.stdout.splitlines() if ln.strip().startswith("globenewswire-public-companies"))
    assert line.split()[1:3] == ["ok", "2"]
    feeds = {f["name"]: f for f in json.loads(run(config, "status", "--json").stdout)["feeds"]}
    assert feeds["test-down"]["state"] == "unhealthy" and feeds["test-down"]["consecutive_failures"] == 1
    assert feeds["sec-edgar-8k"]["items_24h"] == 4 and feeds["sec-edgar-8k"]["state"] == "ok"
    listing = run(config, "ingest", "--list").stdout
    line = next(ln for ln in listing.splitlines() if ln.startswith("test-down"))
    assert "UNHEALTHY" in line and "on" in line.split()
    assert next(ln for ln in listing.splitlines() if ln.startswith("cnbc-top-news")).split()[2] == "off"

    with ServerThread(create_app(settings, poll_s=120)) as srv:
        api = httpx.get(f"{srv.url}/api/feeds", timeout=20).json()
    states = {f["name"]: f["state"] for f in api["feeds"]}
    assert states["test-down"] == "unhealthy" and states["federal-reserve-press"] == "ok" and len(states) == 8
    assert api["feeds"][0]["name"] == "test-down"  # unhealthy first


def test_edgar_without_a_contact_is_refused_with_a_clear_message(settings, feed_server, tmp_path):
    config = write_config(settings, feed_server, tmp_path / "finsent.toml")
    config.write_text(config.read_text().replace(f"user_agent = {json.dumps(UA)}", 'user_agent = "finsent/0.1"'))
    res = run(config, "ingest", "--once", "--feed", "sec-edgar-8k", "--feed", "federal-reserve-press")
    assert res.returncode == 0, res.stderr
    assert "sec-edgar-8k: NOT POLLED: SEC EDGAR requires a User-Agent with your name and a contact e-mail" in res.stdout
    assert "federal-reserve-press: 1 new" in res.stdout
    assert feed_server.requests_to(SHIPPED["sec-edgar-8k"][0]) == []
    rows = query(settings, "SELECT name, state, last_error FROM feeds ORDER BY name")
    assert rows[1][:2] == ("sec-edgar-8k", "unhealthy") and "feeds.user_agent" in rows[1][2]
