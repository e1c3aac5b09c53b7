"""Polling real feed documents from a server on 127.0.0.1 (stream/sources/feeds.py, fetch.py): conditional
GET, 429 with Retry-After, timeouts, oversized and malformed documents, duplicates across polls, EDGAR
by CIK and its User-Agent rule, the per-host rate limit, and a failing feed marked unhealthy while the
others go on; hypothesis over any feed entry and any document.  Every test runs under ``loopback_only``: nothing
here reaches another address.

The documents are written by hand (tests/support/feed_documents.py): no real copy could be fetched."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from prometheus_client import CollectorRegistry

from stream.core.ingest import Checkpoint, Record
from stream.linking import default_linker
from stream.messages.raw_message import InvalidRecord, parse_message
from stream.metrics import FeedMetrics
from stream.sources.feeds import Feed, FeedSource, Outcome, Poller, catalogue_feeds, is_edgar_url, url_feeds
from stream.sources.fetch import FetchError, fetch
from stream.sources.polite import HostLimiter
from stream.sources.rss import FeedState, MalformedFeed, entry_to_message, parse_document
from tests.support.feed_documents import ATOM_NEWS, EDGAR_8K, FED_PRESS, GLOBENEWSWIRE, MALFORMED, PRNEWSWIRE
from tests.support.feed_server import FeedServer, loopback_only

UA = "finsent-tests tests@example.org"


@pytest.fixture(autouse=True)
def only_the_loopback(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "*")  # a proxy of the environment would not be the loopback
    with loopback_only():
        yield


@pytest.fixture
def server():
    with FeedServer() as srv:
        yield srv


def poller(user_agent=UA, timeout_s=2.0, max_bytes=1_000_000, rate=1000.0):
    return Poller(user_agent=user_agent, timeout_s=timeout_s, max_bytes=max_bytes,
                  limiter=HostLimiter(lambda host: rate), extractor=default_linker())


class Recorder:
    def __init__(self):
        self.outcomes: list[Outcome] = []

    def record(self, outcome):
        self.outcomes.append(outcome)

    def of(self, name):
        return [o for o in self.outcomes if o.feed.name == name]


class Clock:
    """A fake clock: sleeping moves it."""

    def __init__(self, t=1_722_542_400.0):  # 2024-08-01 20:00 UTC
        self.t = t

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += max(s, 0.0)


def drain(source):
    """Every record and every checkpoint's line (the checkpoints committed in order, as the ingest loop does)."""
    items, lines = [], []
    for rec in source:
        if isinstance(rec, Checkpoint):
            lines.append(rec.commit())
        else:
            assert isinstance(rec, Record)
            items.append(rec.item)
    return items, lines


def once(feeds, tmp_path, p=None, **kw):
    health = Recorder()
    src = FeedSource(feeds, FeedState(tmp_path / "state.json"), p or poller(), health=[health], once=True, **kw)
    items, lines = drain(src)
    return items, lines, health


# --------------------------------------------------------------------------- fetch
def test_conditional_get_etag_then_304(server, tmp_path):
    url = server.serve("/gnw.rss", GLOBENEWSWIRE, etag='"v1"')
    feed = Feed("gnw", url, "rss", 60)
    items, lines, health = once([feed], tmp_path)
    assert len(items) == 2 and lines[-1].endswith("gnw: 2 new, 0 invalid")
    items, lines, health = once([feed], tmp_path)  # a new process: the ETag comes from the state file
    assert items == [] and lines[-1].endswith("gnw: not modified")
    second = server.requests_to("/gnw.rss")[1]
    assert second.headers["if-none-match"] == '"v1"' and second.headers["user-agent"] == UA
    assert health.outcomes[-1].ok and health.outcomes[-1].not_modified


def test_conditional_get_last_modified(server):
    lm = "Thu, 01 Aug 2024 20:20:01 GMT"
    url = server.serve("/fed.xml", FED_PRESS, last_modified=lm)
    first = fetch(url, user_agent=UA, timeout_s=2, max_bytes=10**6)
    assert first.status == 200 and first.modified == lm and b"FOMC" in first.body
    again = fetch(url, user_agent=UA, timeout_s=2, max_bytes=10**6, modified=first.modified)
    assert again.status == 304 and again.body == b""


@pytest.mark.parametrize("status, retry_after, seconds", [(429, "120", 120.0),
                                                          (503, "Fri, 01 Aug 2100 00:00:00 GMT", 86400.0),
                                                          (429, None, None)])
def test_429_and_503_carry_retry_after(server, status, retry_after, seconds):
    url = server.serve("/busy", "slow down", status=status,
                       headers={"Retry-After": retry_after} if retry_after else {})
    with pytest.raises(FetchError) as exc:
        fetch(url, user_agent=UA, timeout_s=2, max_bytes=10**6)
    assert exc.value.reason == f"http_{status}" and exc.value.retry_after == seconds


def test_a_429_is_honoured_by_the_schedule_and_across_restarts(server, tmp_path):
    url = server.serve("/busy.rss", "", status=429, headers={"Retry-After": "1800"})
    clock = Clock()
    feed = Feed("busy", url, "rss", 60)
    _, lines, health = once([feed], tmp_path, clock=clock, sleep=clock.sleep)
    o = health.outcomes[-1]
    assert not o.ok and o.reason == "http_429" and "Retry-After 1800" in o.error
    assert (o.next_at - o.at).total_seconds() >= 1800  # not before the server said
    assert "failed (http_429" in lines[-1]
    clock.t += 60  # a restarted poller a minute later does not ask again
    _, lines, _ = once([feed], tmp_path, clock=clock, sleep=clock.sleep)
    assert "busy: skipped, waiting until" in lines[-1] and len(server.requests_to("/busy.rss")) == 1
    clock.t += 1800  # after the wait it asks again
    once([feed], tmp_path, clock=clock, sleep=clock.sleep)
    assert len(server.requests_to("/busy.rss")) == 2


def test_a_server_that_does_not_answer_times_out(server):
    url = server.serve("/hang", FED_PRESS, delay_s=3)
    t0 = time.monotonic()
    with pytest.raises(FetchError) as exc:
        fetch(url, user_agent=UA, timeout_s=0.5, max_bytes=10**6)
    assert exc.value.reason == "timeout" and time.monotonic() - t0 < 2.5


def test_a_trickled_document_times_out_as_a_whole(server):
    url = server.serve("/drip", FED_PRESS[:120], trickle_s=0.02)  # each byte in time, all of them too late
    t0 = time.monotonic()
    with pytest.raises(FetchError) as exc:
        fetch(url, user_agent=UA, timeout_s=0.5, max_bytes=10**6)
    assert exc.value.reason == "timeout" and time.monotonic() - t0 < 1.5


@pytest.mark.parametrize("declare", [True, False])
def test_an_oversized_document_is_refused(server, declare):
    url = server.serve("/huge", b"<rss>" + b"x" * 200_000, declare_length=declare)
    with pytest.raises(FetchError) as exc:
        fetch(url, user_agent=UA, timeout_s=5, max_bytes=50_000)
    assert exc.value.reason == "too_large"


def test_http_errors_and_connection_refused(server):
    with pytest.raises(FetchError) as exc:
        fetch(server.url("/nothing-here"), user_agent=UA, timeout_s=2, max_bytes=10**6)
    assert exc.value.reason == "http_404"
    with pytest.raises(FetchError) as exc:
        fetch("http://127.0.0.1:9/feed.xml", user_agent=UA, timeout_s=2, max_bytes=10**6)  # port 9: discard, closed
    assert exc.value.reason == "connection"


def test_a_local_file_is_read_with_the_same_cap(tmp_path):
    path = tmp_path / "feed.xml"
    path.write_text(FED_PRESS)
    assert b"FOMC" in fetch(str(path), user_agent=UA, timeout_s=1, max_bytes=10**6).body
    assert fetch(path.as_uri(), user_agent=UA, timeout_s=1, max_bytes=10**6).status == 200
    with pytest.raises(FetchError, match="at most 10"):
        fetch(str(path), user_agent=UA, timeout_s=1, max_bytes=10)
    with pytest.raises(FetchError) as exc:
        fetch(str(tmp_path / "missing.xml"), user_agent=UA, timeout_s=1, max_bytes=10)
    assert exc.value.reason == "missing"


# --------------------------------------------------------------------------- polling
def test_malformed_xml_fails_that_feed_only(server, tmp_path):
    bad = Feed("broken", server.serve("/broken.rss", MALFORMED), "rss", 60)
    good = Feed("prn", server.serve("/prn.rss", PRNEWSWIRE), "rss", 60)
    items, _, health = once([bad, good], tmp_path)
    assert [it.tickers for it in items] == [("CAT",)]
    assert health.of("broken")[0].reason == "malformed" and "not well-formed" in health.of("broken")[0].error
    assert health.of("prn")[0].ok


def test_an_html_page_is_not_a_feed(server, tmp_path):
    page = Feed("page", server.serve("/page", "<html><body>Moved</body></html>", content_type="text/html"), "rss", 60)
    _, _, health = once([page], tmp_path)
    assert health.outcomes[0].reason == "malformed" and "not an RSS or Atom" in health.outcomes[0].error


def test_a_duplicate_entry_across_polls_is_sent_once(server, tmp_path):
    url = server.serve("/fed.xml", FED_PRESS)  # no ETag: the whole document comes back every time
    feed = Feed("fed", url, "rss", 60)
    first, _, _ = once([feed], tmp_path)
    assert [it.title for it in first] == ["Federal Reserve issues FOMC statement"]
    newer = FED_PRESS.replace("<item>", """<item>
<title>Federal Reserve Board announces approval of application</title>
<link>https://www.federalreserve.gov/newsevents/pressreleases/orders20240801a.htm</link>
<pubDate>Thu, 01 Aug 2024 19:00:00 GMT</pubDate>
</item>
<item>""", 1)
    server.serve("/fed.xml", newer)
    second, lines, _ = once([feed], tmp_path)
    assert [it.title for it in second] == ["Federal Reserve Board announces approval of application"]
    assert lines[-1].endswith("fed: 1 new, 0 invalid")
    third, lines, _ = once([feed], tmp_path)
    assert third == [] and lines[-1].endswith("fed: 0 new, 0 invalid")


def test_state_is_saved_only_at_the_checkpoint(server, tmp_path):
    feed = Feed("gnw", server.serve("/gnw.rss", GLOBENEWSWIRE), "rss", 60)
    state = FeedState(tmp_path / "state.json")
    it = iter(FeedSource([feed], state, poller(), once=True))
    assert isinstance(next(it), Record) and isinstance(next(it), Record)
    cp = next(it)
    assert isinstance(cp, Checkpoint) and state.feed(feed.url)["seen"] == []  # the sink has not flushed yet
    assert not (tmp_path / "state.json").exists()
    cp.commit()
    assert len(FeedState(tmp_path / "state.json").feed(feed.url)["seen"]) == 2


def test_edgar_by_cik_in_the_reference_and_not(server, tmp_path):
    feed = Feed("sec-8k", server.serve("/cgi-bin/browse-edgar?action=getcurrent&type=8-K&output=atom", EDGAR_8K,
                                       content_type="application/atom+xml"), "edgar", 120)
    items, _, _ = once([feed], tmp_path)
    by_id = {it.id: it for it in items}
    apple, zorblax = by_id["sec-0000320193-24-000081"], by_id["sec-0001999999-24-000004"]
    assert apple.tickers == ("AAPL",) and apple.ticker_links[0]["rule"] == "cik"
    assert apple.extra["given_topic"] == "Earnings" and apple.extra["feed"] == "sec-8k"
    assert zorblax.tickers == () and zorblax.extra["flags"] == ["bankruptcy", "debt_acceleration"]
    assert is_edgar_url(feed.url) and not is_edgar_url(server.url("/fed.xml"))


def test_edgar_is_refused_without_a_contact_and_the_others_go_on(server, tmp_path):
    sec = Feed("sec-8k", server.serve("/edgar", EDGAR_8K), "edgar", 120)
    fed = Feed("fed", server.serve("/fed.xml", FED_PRESS), "rss", 600)
    items, lines, health = once([sec, fed], tmp_path, p=poller(user_agent="finsent/0.1 news poller"))
    assert server.requests_to("/edgar") == []  # not one request without a contact
    assert [it.source for it in items] == ["FRB: Press Release - All"]
    refused = health.of("sec-8k")[0]
    assert not refused.ok and not refused.healthy and refused.reason == "no_contact"
    assert "User-Agent" in refused.error and "feeds.user_agent" in refused.error and "e-mail" in refused.error
    assert any("sec-8k: NOT POLLED" in line for line in lines)


def test_the_per_host_rate_limit_spaces_requests_to_one_server(server, tmp_path):
    feeds = [Feed(f"sec-{n}", server.serve(f"/edgar-{n}", EDGAR_8K), "edgar", 120) for n in range(3)]
    once(feeds, tmp_path, p=poller(rate=4.0))  # as EDGAR's 10 per second, slower to measure
    times = sorted(h.at for h in server.hits)
    assert len(times) == 3
    assert all(b - a >= 0.25 - 0.02 for a, b in pairwise(times)), times


def test_a_failing_feed_becomes_unhealthy_and_never_stops_the_others(server, tmp_path):
    bad = Feed("down", server.serve("/down.rss", "oops", status=500), "rss", 60)
    good = Feed("fed", server.serve("/fed.xml", FED_PRESS, etag='"f"'), "rss", 60)
    clock, health = Clock(), Recorder()
    src = FeedSource([bad, good], FeedState(tmp_path / "s.json"), poller(), health=[health], jitter=0.0,
                     backoff_max_s=240, unhealthy_after=3, clock=clock, sleep=clock.sleep, rng=random.Random(0))
    it = iter(src)
    while len(health.of("down")) < 4:
        rec = next(it)
        if isinstance(rec, Checkpoint):
            rec.commit()
    down = health.of("down")
    assert [o.failures for o in down] == [1, 2, 3, 4]
    assert [o.healthy for o in down] == [True, True, False, False]
    assert [(o.next_at - o.at).total_seconds() for o in down] == [60, 120, 240, 240]  # backoff, capped
    assert all(o.reason == "http_500" for o in down)
    fed = health.of("fed")
    assert len(fed) == 7 and all(o.ok for o in fed)  # polled every minute meanwhile (0 to 6 minutes)
    assert fed[0].items == 1 and all(o.not_modified for o in fed[1:])
    # it comes back: one success resets it
    server.serve("/down.rss", PRNEWSWIRE)
    while len(health.of("down")) < 5:
        rec = next(it)
        if isinstance(rec, Checkpoint):
            rec.commit()
    assert health.of("down")[-1].ok and health.of("down")[-1].healthy and health.of("down")[-1].failures == 0


def test_a_broken_health_recorder_does_not_stop_the_polling(server, tmp_path):
    class Broken:
        def record(self, outcome):
            raise RuntimeError("database gone")

    feed = Feed("fed", server.serve("/fed.xml", FED_PRESS), "rss", 60)
    src = FeedSource([feed], FeedState(tmp_path / "s.json"), poller(), health=[Broken()], once=True)
    items, lines = drain(src)
    assert len(items) == 1 and lines[-1].endswith("fed: 1 new, 0 invalid")


def test_every_kind_of_document(server, tmp_path):
    feeds = [Feed("atom", server.serve("/atom", ATOM_NEWS, content_type="application/atom+xml"), "atom", 60,
                  title="Desk"),
             Feed("gnw", server.serve("/gnw", GLOBENEWSWIRE), "rss", 60),
             Feed("sec", server.serve("/sec", EDGAR_8K), "edgar", 60)]
    items, _, health = once(feeds, tmp_path)
    by_feed = {}
    for it in items:
        by_feed.setdefault(it.extra["feed"], []).append(it)
    assert by_feed["atom"][0].tickers == ("KO",) and by_feed["atom"][0].source == "Desk"  # the catalogue's title
    assert {it.tickers for it in by_feed["gnw"]} == {("WFC",), ("ABT",)}
    assert any(lk["rule"] == "exchange" for it in by_feed["gnw"] for lk in it.ticker_links)
    assert len(by_feed["sec"]) == 4 and all(o.ok for o in health.outcomes)


def test_feed_metrics_per_feed():
    reg = CollectorRegistry()
    m = FeedMetrics(reg)
    feed = Feed("fed", "http://127.0.0.1/x", "rss", 60)
    at = datetime(2024, 8, 1, 20, tzinfo=UTC)
    m.record(Outcome(feed, at, True, items=3))
    m.record(Outcome(feed, at, False, reason="timeout", error="slow", failures=3, healthy=False))
    value = reg.get_sample_value
    assert value("finsent_feed_items_total", {"feed": "fed"}) == 3
    assert value("finsent_feed_polls_total", {"feed": "fed", "outcome": "ok"}) == 1
    assert value("finsent_feed_polls_total", {"feed": "fed", "outcome": "error"}) == 1
    assert value("finsent_feed_up", {"feed": "fed"}) == 0 and value("finsent_feed_consecutive_failures", {"feed": "fed"}) == 3
    assert value("finsent_feed_last_success_timestamp_seconds", {"feed": "fed"}) == at.timestamp()


def test_feeds_from_the_catalogue_and_from_urls():
    from stream.base.settings import FeedSettings

    cat = FeedSettings(catalogue={"cnbc-top-news": {"enabled": True}}).catalogue
    names = [f.name for f in catalogue_feeds(cat)]
    assert "cnbc-top-news" in names and "sec-edgar-8k" in names and "bbc-business" not in names
    assert [f.name for f in catalogue_feeds(cat, ["bbc-business"])] == ["bbc-business"]  # asked by name: off or not
    with pytest.raises(ValueError, match="no feed nope"):
        catalogue_feeds(cat, ["nope"])
    by_url = url_feeds(["https://www.sec.gov/cgi-bin/browse-edgar?action=getcurrent&type=8-K&output=atom",
                        "/tmp/a.xml", "/tmp/a.xml"], 30)
    assert [(f.kind, f.interval_s) for f in by_url] == [("edgar", 30), ("rss", 30)]


# --------------------------------------------------------------------------- any document, any entry
ENTRY = st.fixed_dictionaries({}, optional={
    "title": st.one_of(st.none(), st.text(max_size=120)),
    "summary": st.one_of(st.none(), st.text(max_size=300)),
    "link": st.one_of(st.none(), st.text(max_size=80)),
    "tags": st.lists(st.fixed_dictionaries({}, optional={"term": st.one_of(st.none(), st.text(max_size=20))}),
                     max_size=3),
    "published_parsed": st.one_of(st.none(), st.tuples(*[st.integers(-10**6, 10**6)] * 6,
                                                       *[st.integers(0, 400)] * 3)),
})


@given(ENTRY, st.one_of(st.none(), st.text(max_size=40)))
@hsettings(suppress_health_check=[HealthCheck.too_slow])
def test_any_entry_is_an_article_or_a_reasoned_refusal(entry, feed_title):
    msg = entry_to_message(entry, feed_title, "http://127.0.0.1/feed.xml")
    try:
        item = parse_message(msg, extractor=default_linker())
    except InvalidRecord as exc:
        assert exc.reason in {"empty_title", "missing_title", "oversized", "absurd_timestamp"}, exc
        return
    assert item.title and item.id


@given(st.binary(max_size=400) | st.text(max_size=400).map(lambda t: ("<rss><channel>" + t).encode()))
def test_any_document_is_parsed_or_refused_as_malformed(body):
    try:
        parsed = parse_document(body)
    except MalformedFeed as exc:
        assert str(exc)
        return
    assert parsed.entries or parsed.get("version")
