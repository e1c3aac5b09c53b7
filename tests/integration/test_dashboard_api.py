"""The dashboard's JSON API against the real local stack: every endpoint, bad parameters, the
analyst-only connection (no write is possible through it), and an alert pushed live by SSE."""

from __future__ import annotations

import json
import queue
import threading
import time
from datetime import UTC, timedelta
from pathlib import Path

import httpx
import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

from storage import migrate
from storage.db import fetch_all
from stream.base.errors import UserError
from stream.dashboard.serve import ServerThread, free_port
from stream.dashboard.server import check_read_only, create_app
from tests.integration.dashboard_support import SPIKE_1, SPIKE_2, SPLIT, START, iso, seed_schema

DAY = {"since": iso(START), "until": iso(START + timedelta(hours=4))}
SECRET = "s3cr3t-Hook-Pass"


@pytest.fixture(scope="module")
def seeded(stack):
    s = seed_schema(stack.settings)
    yield s
    migrate.drop_schema(stack.settings.dsn, s.schema)


@pytest.fixture(scope="module")
def alert_target():
    """A real apprise target that refuses connections (a closed port), with a password in its URL."""
    return f"json://hook:{SECRET}@127.0.0.1:{free_port()}/finsent"


@pytest.fixture(scope="module")
def server(seeded, alert_target):
    settings = seeded.settings.replace(alert_urls=(alert_target,))
    # poll_s=120: an alert that arrives within seconds came through LISTEN/NOTIFY, not the safety poll
    app = create_app(settings, poll_s=120)
    with ServerThread(app) as srv:
        srv.app = app
        yield srv


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=20) as c:
        yield c


def sql(seeded, query, params=()):
    return fetch_all(seeded.settings.dsn, seeded.schema, query, params)


def test_seeded_day_has_the_planted_alert(seeded):
    assert seeded.spike_alert.window_start <= SPIKE_1.at < seeded.spike_alert.window_end + timedelta(minutes=5)


def test_meta_and_health(client, seeded):
    meta = client.get("/api/meta").json()
    assert meta["schema"] == seeded.schema
    assert meta["first"] == iso(START) and meta["last_alert_id"] == max(a.id for a in seeded.alerts)
    h = client.get("/api/health")
    assert h.status_code == 200, h.text
    body = h.json()
    assert body["database"]["ok"] and body["database"]["user"] == "finsent_analyst" and body["database"]["read_only"]
    assert body["broker"]["ok"], body["broker"]
    assert body["broker"]["topic"] == seeded.settings.topic_raw and "consumer_lag" in body
    assert body["live_alerts"]["listening"] is True


def test_trends_equal_the_stored_buckets(client, seeded):
    t = client.get("/api/trends", params={"kind": "ticker", "scope": SPIKE_1.ticker.lower(), **DAY}).json()
    assert t["scope"] == SPIKE_1.ticker and t["bucket"] == "5min"  # 4 hours -> auto picks 5 minutes
    (arts, neg, ssum), = sql(seeded, "SELECT sum(articles), sum(negative), sum(score_sum) FROM sentiment_minute"
                                     " WHERE scope_kind = 'ticker' AND scope = %s", (SPIKE_1.ticker,))
    assert t["totals"]["articles"] == arts == sum(p["articles"] for p in t["points"])
    assert t["totals"]["negative"] == neg
    assert t["totals"]["mean_score"] == pytest.approx(ssum / arts)
    assert [a["id"] for a in t["alerts"]] == [a.id for a in sorted(seeded.alerts, key=lambda a: a.window_start)
                                              if a.scope == SPIKE_1.ticker]  # the windows to shade
    assert seeded.spike_alert.id in [a["id"] for a in t["alerts"]]
    hourly = client.get("/api/trends", params={"kind": "ticker", "scope": SPIKE_1.ticker, "bucket": "hour", **DAY}).json()
    assert hourly["bucket_seconds"] == 3600 and hourly["totals"] == pytest.approx(t["totals"])
    market = client.get("/api/trends", params={"range": "1d", "until": DAY["until"]}).json()
    assert market["kind"] == "all" and market["totals"]["articles"] == len(seeded.first_half)


def test_scopes_and_movers(client, seeded):
    topics = client.get("/api/scopes", params={"kind": "topic", "limit": 500, **DAY}).json()["scopes"]
    assert sum(s["articles"] for s in topics) == len(seeded.first_half)
    assert [s["articles"] for s in topics] == sorted((s["articles"] for s in topics), reverse=True)
    found = client.get("/api/scopes", params={"kind": "ticker", "prefix": SPIKE_1.ticker[:2].lower()}).json()["scopes"]
    assert SPIKE_1.ticker in [s["scope"] for s in found]
    movers = client.get("/api/movers", params={"limit": 5, **DAY}).json()["movers"]
    assert 1 <= len(movers) <= 5
    # one seeded day: no ticker has a 30-day baseline, so the most negative mean score leads
    assert all(m["baseline_mean_score"] is None for m in movers)
    assert [m["mean_score"] for m in movers] == sorted(m["mean_score"] for m in movers)
    assert SPIKE_1.ticker in [m["ticker"] for m in movers]
    assert all(m["articles"] >= 5 for m in movers)


def test_alerts_list_and_detail_never_show_a_target_url(client, seeded, alert_target):
    from alerts.notifier import Notifier

    spike = seeded.spike_alert
    lst = client.get("/api/alerts", params=DAY).json()["alerts"]
    assert sorted(a["id"] for a in lst) == sorted(a.id for a in seeded.alerts)
    assert [a["window_end"] for a in lst] == sorted((a["window_end"] for a in lst), reverse=True)
    mine = client.get("/api/alerts", params={"kind": "ticker", "scope": SPIKE_1.ticker, **DAY}).json()["alerts"]
    assert spike.id in [a["id"] for a in mine] and all(a["scope"] == SPIKE_1.ticker for a in mine)

    # a real delivery attempt to the refusing target: the alert stays pending with an error naming it
    notifier = Notifier(seeded.settings.replace(alert_urls=(alert_target,)))
    try:
        assert notifier.deliver_pending() == 0
    finally:
        notifier.close()
    (err,), = sql(seeded, "SELECT last_error FROM alerts WHERE id = %s", (spike.id,))
    assert "127.0.0.1" in err  # the stored error names the target...

    r = client.get(f"/api/alerts/{spike.id}")
    assert r.status_code == 200
    d = r.json()
    a = d["alert"]
    assert (a["scope"], a["rule"], a["z"]) == (SPIKE_1.ticker, spike.rule, pytest.approx(spike.z))
    assert a["baseline"] == pytest.approx(spike.baseline)
    assert [x["id"] for x in d["top_articles"]] == spike.top_article_ids
    assert all(SPIKE_1.ticker in x["tickers"] for x in d["top_articles"])
    dv = d["delivery"]
    assert dv["status"] == "pending" and dv["attempts"] == 1
    assert [t["status"] for t in dv["targets"]] == ["failed, retrying"]
    assert "<target>" in dv["last_error"]
    # ...the API never does: not the URL, not its host:port, not its password
    port = alert_target.rsplit(":", 1)[1].split("/")[0]
    assert SECRET not in r.text and f"127.0.0.1:{port}" not in r.text and "json://" not in r.text
    assert client.get("/api/alerts/999999").status_code == 404


def test_articles(client, seeded):
    r = client.get("/api/articles", params={"kind": "ticker", "scope": SPIKE_1.ticker, "limit": 500, **DAY}).json()
    arts = r["articles"]
    (n,), = sql(seeded, "SELECT count(*) FROM articles WHERE tickers @> ARRAY[%s]", (SPIKE_1.ticker,))
    assert len(arts) == n and all(SPIKE_1.ticker in a["tickers"] for a in arts)
    assert [a["published_at"] for a in arts] == sorted((a["published_at"] for a in arts), reverse=True)
    neg = client.get("/api/articles", params={"kind": "ticker", "scope": SPIKE_1.ticker, "order": "negative",
                                              "sentiment": "negative", "limit": 3, **DAY}).json()["articles"]
    assert len(neg) == 3 and all(a["sentiment"] == "negative" for a in neg)
    assert [a["sentiment_score"] for a in neg] == sorted(a["sentiment_score"] for a in neg)
    topic = arts[0]["topic"]
    t = client.get("/api/articles", params={"kind": "topic", "scope": topic, "limit": 10, **DAY}).json()["articles"]
    assert t and all(a["topic"] == topic for a in t)


@pytest.mark.parametrize("path, params, message", [
    ("/api/trends", {"kind": "sector", "scope": "x"}, "kind: must be one of"),
    ("/api/trends", {"kind": "ticker"}, "scope: a ticker name is required"),
    ("/api/trends", {"kind": "ticker", "scope": "AAPL'; DROP TABLE alerts; --"}, "not a ticker symbol"),
    ("/api/trends", {"range": "1y"}, "range: must be one of"),
    ("/api/trends", {"since": "2024-02-30"}, "not an ISO 8601"),
    ("/api/trends", {"since": "2025-01-02", "until": "2025-01-01"}, "until must be after since"),
    ("/api/trends", {"range": "30d", "bucket": "minute"}, "more than 5000 points"),
    ("/api/trends", {"colour": "red"}, "unknown parameter"),
    ("/api/movers", {"limit": "100000"}, "limit: must be between"),
    ("/api/articles", {"kind": "ticker", "scope": "AAPL", "order": "random"}, "order: must be one of"),
    ("/api/articles", {"kind": "all", "sentiment": "angry"}, "sentiment: must be one of"),
    ("/api/alerts", {"scope": "AAPL"}, "scope needs kind"),
    ("/api/alerts/abc", {}, "not an alert id"),
    ("/api/scopes", {"prefix": "x" * 81}, "at most 80"),
    ("/api/meta", {"x": "1"}, "unknown parameter"),
])
def test_bad_parameters_are_clear_400s(client, path, params, message):
    r = client.get(path, params=params)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


def test_no_write_is_possible_through_the_dashboard(client, server, seeded):
    # no route takes anything but GET
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        r = client.request(method, "/api/alerts", content=b"{}")
        assert r.status_code == 405 and "read-only" in r.json()["error"]
    # the app's own connections are the analyst role in read-only transactions...
    pool = server.app.state.pool
    with pool.cursor() as cur:
        cur.execute("SELECT current_user, current_setting('transaction_read_only')")
        assert cur.fetchone() == ("finsent_analyst", "on")
    with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
        with pool.cursor() as cur:
            cur.execute("UPDATE alerts SET delivery_status = 'delivered'")
    # ...and even a read-write transaction of that role is refused by its grants
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        with pool.cursor() as cur:
            cur.execute("ROLLBACK; BEGIN READ WRITE; DELETE FROM alerts")
    assert sql(seeded, "SELECT count(*) FROM alerts WHERE delivery_status = 'pending'") == [(len(seeded.alerts),)]
    # a login that could write is refused at start-up
    conn = psycopg2.connect(seeded.settings.dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(f'SET search_path = "{seeded.schema}"')
            with pytest.raises(UserError, match="read-only finsent_analyst"):
                check_read_only(cur)
    finally:
        conn.close()


def test_pages_render(client, seeded):
    for path in ("/", f"/ticker/{SPIKE_1.ticker}", "/topic/Earnings", f"/alert/{seeded.spike_alert.id}"):
        r = client.get(path)
        assert r.status_code == 200 and "text/html" in r.headers["content-type"], path
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert "/static/vendor/plotly.min.js" in r.text
    js = client.get("/static/vendor/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000 and b"plotly" in js.content[:2000].lower()
    assert client.get("/alert/424242").status_code == 404
    assert client.get("/ticker/%3Cscript%3E").status_code == 400


def test_a_new_alert_is_pushed_live_through_listen_notify(server, seeded):
    """Open the SSE stream, store the second half (a second planted spike) through the real alert
    service: the alert arrives within seconds -- the server's safety poll is 120 s, so by NOTIFY."""
    from tests.support.alert_streams import store_and_observe

    events: queue.Queue = queue.Queue()
    stop = threading.Event()

    def listen():
        try:
            with httpx.Client(base_url=server.url, timeout=httpx.Timeout(5, read=60)) as c:
                with c.stream("GET", "/api/alerts/stream") as r:
                    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
                    event = None
                    for line in r.iter_lines():
                        if stop.is_set():
                            return
                        if line.startswith("event:"):
                            event = line.split(":", 1)[1].strip()
                        elif line.startswith("data:"):
                            events.put((event, json.loads(line.split(":", 1)[1])))
        except httpx.HTTPError:
            if not stop.is_set():  # the server going away at the end of the module is expected
                raise

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    assert events.get(timeout=20)[0] == "ready"
    new = store_and_observe(seeded.settings, seeded.second_half)
    t0 = time.monotonic()
    spike2 = next(a for a in new if a.scope == SPIKE_2.ticker)
    assert spike2.window_start >= SPLIT
    got = []
    while spike2.id not in [d["id"] for _, d in got]:
        got.append(events.get(timeout=20))
    assert time.monotonic() - t0 < 10
    assert all(kind == "alert" for kind, _ in got)
    assert sorted(d["id"] for _, d in got) == [a.id for a in sorted(new, key=lambda a: a.id)][:len(got)]
    stop.set()


def test_ticker_links_and_their_matched_text_come_with_the_headlines(stack, schema):
    from storage.writer import ArticleRow, Writer

    s = stack.settings.replace(schema=schema)
    title = "Apple and $MSFT rally as <script>alert(1)</script> chip stocks climb"
    links = [{"ticker": "AAPL", "rule": "name", "start": 0, "end": 5, "text": "Apple"},
             {"ticker": "MSFT", "rule": "cashtag", "start": 10, "end": 15, "text": "$MSFT"}]
    row = ArticleRow(id="dash-links-1", published_at=START + timedelta(minutes=3), source="Test Wire",
                     url="javascript:alert(1)", title=title, tickers=["AAPL", "MSFT"], topic="Markets",
                     topic_score=0.9, sentiment="positive", p_negative=0.05, p_neutral=0.1, p_positive=0.85,
                     sentiment_score=0.8, model_version="test", ticker_links=links)
    with Writer(s.dsn, schema) as w:
        assert len(w.write_batch([row]).inserted) == 1
    with ServerThread(create_app(s)) as srv:
        r = httpx.get(f"{srv.url}/api/articles", params={"kind": "ticker", "scope": "$msft", **DAY}, timeout=20)
    assert r.status_code == 200, r.text
    (a,) = r.json()["articles"]
    assert a["title"] == title and a["tickers"] == ["AAPL", "MSFT"]
    assert a["ticker_links"] == links  # stored as is; the page marks title[start:end] and shows the text
    assert a["url"] == "javascript:alert(1)"  # returned as stored; the page links only http(s) URLs


def test_health_reports_the_worker_groups_lag_beside_a_prometheus_scrape(settings):
    """Real topic, real committed offsets: lag = log end - committed, per the worker's consumer group;
    the worker's Prometheus endpoint serves beside the dashboard."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata
    from prometheus_client import CollectorRegistry

    from stream.core.kafka_io import ensure_topics
    from stream.metrics import WorkerMetrics

    ensure_topics(settings)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    for i in range(10):
        producer.send(settings.topic_raw, f"record {i}".encode(), partition=0)
    producer.flush()
    producer.close()
    tp = TopicPartition(settings.topic_raw, 0)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=settings.app_id,
                             enable_auto_commit=False)
    consumer.assign([tp])
    consumer.commit({tp: OffsetAndMetadata(4, "", -1)})
    consumer.close()

    metrics = WorkerMetrics(registry=CollectorRegistry())
    metrics_port = free_port()
    metrics.serve(metrics_port)
    metrics.lag.set(6)
    with ServerThread(create_app(settings)) as srv:
        h = httpx.get(f"{srv.url}/api/health", timeout=30).json()
        scrape = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
    assert h["broker"]["ok"] and h["broker"]["group"] == settings.app_id and h["broker"]["partitions"] == settings.partitions
    assert h["consumer_lag"] == 6 and h["broker"]["uncommitted_partitions"] == settings.partitions - 1
    assert scrape.status_code == 200 and "finsent_consumer_lag 6.0" in scrape.text


_KEYS = ("kind", "scope", "range", "since", "until", "bucket", "limit", "sentiment", "order", "after", "prefix",
         "min_articles", "zzz")
_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["ticker", "topic", "all", "AAPL", "$ensm", "Earnings", "1h", "30d", "hour", "minute", "negative",
                     "newest", "2025-03-13", "2025-03-13T13:00:00Z", "2025-03-13T17:00:00+05:30", "0", "50", "-1",
                     "99999999999999999999", "' OR 1=1 --", "%", "_", "\\", "\u00e9\u00e8", "NaN"]),
)


@hyp_settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/api/trends", "/api/scopes", "/api/movers", "/api/alerts", "/api/articles",
                             "/api/meta"]),
       query=st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=5))
def test_any_query_string_gets_data_or_a_clear_400(client, path, query):
    """Whatever a client sends: 200 with JSON or 400 with an error message; never a 500, never a hang."""
    r = client.get(path, params=query)
    assert r.status_code in (200, 400), (path, query, r.status_code, r.text[:300])
    body = r.json()
    if r.status_code == 400:
        assert isinstance(body["error"], str) and body["error"]


def test_movers_are_the_cookbooks_query_1_live(stack, schema):
    """/api/movers over the last 24 hours gives the rows of README cookbook query 1 run now."""
    from datetime import datetime

    from storage.analyst import run_query
    from storage.dashboard import ceil_to
    from storage.writer import Writer
    from tests.support.sample_rows import Spike, sample_rows, write_all

    now = datetime.now(UTC)
    with Writer(stack.dsn, schema) as w:
        write_all(w, sample_rows(now - timedelta(days=12), now, per_hour=40, seed=5,
                                 spikes=(Spike("NFLX", now - timedelta(hours=6), minutes=20, articles=30),)))
    s = stack.settings.replace(schema=schema)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    cookbook = readme.split("\n## Analyst SQL cookbook", 1)[1]
    assert "**1. Worst movers:**" in cookbook.split("```sql", 1)[0]
    query_1 = cookbook.split("```sql\n", 1)[1].split("```", 1)[0]
    cols, rows = run_query(s.analyst_dsn, schema, query_1, timeout="30s")
    assert rows and rows[0][0] == "NFLX"  # the planted burst leads
    # the cookbook reads hourly buckets: those starting at or after now - 24 h, up to now
    since = ceil_to(now - timedelta(hours=24), timedelta(hours=1))
    with ServerThread(create_app(s)) as srv:
        r = httpx.get(f"{srv.url}/api/movers", params={"since": iso(since), "until": iso(now + timedelta(hours=1)),
                                                        "limit": 10}, timeout=30)
    assert r.status_code == 200, r.text
    got = [(m["ticker"], m["articles"], round(m["change"], 3)) for m in r.json()["movers"]]
    want = [(row[cols.index("ticker")], row[cols.index("articles_24h")], float(row[cols.index("change")]))
            for row in rows]
    assert [g[:2] for g in got] == [w_[:2] for w_ in want]  # same tickers, same order, same 24-hour volume
    assert [g[2] for g in got] == pytest.approx([w_[2] for w_ in want], abs=0.0011)  # the cookbook rounds


# start_background leaves the dashboard running on purpose (detached; `finsent demo` exits and it stays):
# its Popen object warns when collected while the child runs.  As an error, that warning would also skip
# Popen.__del__'s registration of the child for reaping, and the stopped dashboard would stay a zombie.
@pytest.mark.filterwarnings(r"ignore:subprocess \d+ is still running:ResourceWarning")
def test_background_dashboard_of_the_demo_starts_and_stops(seeded, tmp_path):
    """What 'finsent demo' starts and 'finsent dashboard --stop' / 'finsent down' stop (by its pid file)."""
    import os

    from stream.dashboard.background import healthy, start_background, stop_background

    port = free_port()
    s = seeded.settings.replace(state_dir=tmp_path, dashboard_port=port)
    url = start_background(s)
    try:
        assert url == f"http://127.0.0.1:{port}"
        pid = int((tmp_path / "dashboard.pid").read_text())
        r = httpx.get(f"{url}/api/alerts/{seeded.spike_alert.id}", timeout=20)
        assert r.status_code == 200 and r.json()["alert"]["scope"] == SPIKE_1.ticker
        assert start_background(s) == url  # a second start replaces the first
        assert int((tmp_path / "dashboard.pid").read_text()) != pid
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        assert stop_background(tmp_path)
    assert not healthy(port) and not (tmp_path / "dashboard.pid").exists()
    assert not stop_background(tmp_path)  # nothing left to stop


def test_a_tickers_headlines_carry_the_sentiment_toward_it(stack):
    """Per-company sentiment: one headline, bad news for LOSER and good for WINNER (neutral as a whole), is
    negative on LOSER's page and positive on WINNER's; the filter and the "most negative" order follow."""
    from tests.integration.dashboard_support import LOSER, WINNER, seed_rivalry

    settings, rivalry = seed_rivalry(stack.settings)
    ids = {m["id"] for m in rivalry}
    hour = {"since": iso(START), "until": iso(START + timedelta(hours=1))}
    try:
        with ServerThread(create_app(settings)) as srv, httpx.Client(base_url=srv.url, timeout=20) as c:
            def page(ticker, **params):
                r = c.get("/api/articles", params={"kind": "ticker", "scope": ticker, **hour, **params})
                assert r.status_code == 200, r.text
                return r.json()["articles"]

            for ticker, own in ((LOSER.ticker, "negative"), (WINNER.ticker, "positive")):
                rows = {a["id"]: a for a in page(ticker)}
                assert ids <= set(rows)
                for i in ids:
                    a = rows[i]
                    assert (a["sentiment"], a["ticker_sentiment"], a["ticker_sentiment_source"]) == ("neutral", own, "entity")
                    assert (a["ticker_sentiment_score"] < -0.5) == (own == "negative")
                # other headlines of the ticker (no per-ticker entry): the headline's
                assert all(a["ticker_sentiment"] == a["sentiment"] and a["ticker_sentiment_source"] == "unscored"
                           for i, a in rows.items() if i not in ids)
            negative = [a["id"] for a in page(LOSER.ticker, sentiment="negative")]
            assert ids <= set(negative)
            assert not ids & {a["id"] for a in page(WINNER.ticker, sentiment="negative")}
            assert ids <= {a["id"] for a in page(WINNER.ticker, sentiment="positive")}
            worst = page(LOSER.ticker, order="negative")
            scores = [a["ticker_sentiment_score"] for a in worst]
            assert scores == sorted(scores)  # by the sentiment toward LOSER
            first = [a["id"] for a in worst if a["ticker_sentiment"] == "negative"]
            assert ids <= set(first) and [a["id"] for a in worst[:len(first)]] == first  # neutral as a whole
            # topic and market pages keep the headline's sentiment
            topic = rivalry[0]["truth"]["topic"]
            r = c.get("/api/articles", params={"kind": "topic", "scope": topic, **hour})
            assert all("ticker_sentiment" not in a for a in r.json()["articles"])
    finally:
        migrate.drop_schema(stack.settings.dsn, settings.schema)
