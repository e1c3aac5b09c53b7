"""Delivery pieces that need no database: routing, backoff, targets, message, CLI helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.cli import format_table
from alerts.detector import Decision, DetectorConfig, Finding
from alerts.notifier import Target, alert_tags, backoff_s, load_targets
from alerts.service import Alert, Headline, alert_key, render
from stream.base.config import Settings
from stream.base.errors import UserError
from stream.base.labels import slug
from stream.base.timeparse import parse_time_arg as parse_since

WS = int(datetime(2025, 3, 13, 17, 5, tzinfo=UTC).timestamp())


def target(*tags: str) -> Target:
    return Target("k", "json://x", frozenset(t.lower() for t in tags), None)


def test_routing_by_apprise_tags():
    assert target().routes("ticker", "AAPL")  # untagged: everything
    assert target("all").routes("topic", "Macro")
    desk = target("AAPL", "MSFT")
    assert desk.routes("ticker", "AAPL") and not desk.routes("ticker", "NVDA")
    assert not desk.routes("topic", "Macro")
    assert target("fed-central-banks").routes("topic", "Fed, Central Banks")
    assert target("topic").routes("topic", "M&A, Investments") and not target("topic").routes("ticker", "X")
    assert slug("M&A, Investments") == "m-a-investments"
    assert alert_tags("ticker", "BRK.B") == frozenset({"ticker", "brk.b"})


def test_backoff_is_exponential_and_capped():
    assert [backoff_s(a, 1.0, 10.0) for a in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_load_targets(tmp_path):
    cfg = tmp_path / "apprise.yml"
    cfg.write_text(
        "urls:\n"
        "  - json://127.0.0.1:9/desk:\n"
        "      tag: AAPL, MSFT\n"
        "  - json://user:secret@127.0.0.1:9/all\n"
    )
    ts = load_targets(Settings(alert_urls=("json://127.0.0.1:9/x",), alert_config=str(cfg)))
    assert len(ts) == 3
    assert len({t.key for t in ts}) == 3
    assert all("secret" not in t.label and "secret" not in t.key for t in ts)
    desk = next(t for t in ts if "aapl" in t.tags)
    assert desk.tags == {"aapl", "msft"}
    # paths and query strings may hold tokens: labels keep scheme and host only
    assert desk.label == f"json://127.0.0.1:9/... #{desk.key[:8]}"
    assert load_targets(Settings()) == []


def test_bad_targets_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not a valid apprise URL"):
        load_targets(Settings(alert_urls=("nonsense://pw@host",)))
    with pytest.raises(UserError, match="not found"):
        load_targets(Settings(alert_config=str(tmp_path / "missing.yml")))
    empty = tmp_path / "empty.yml"
    empty.write_text("urls: []\n")
    with pytest.raises(UserError):
        load_targets(Settings(alert_config=str(empty)))


def finding() -> Finding:
    d = Decision(True, "fired", articles=11, negative=9, share=9 / 11, baseline=0.3, std=0.55, z=6.4, history=40)
    return Finding("ticker", "NRVX", WS, WS + 300, d, score_sum=-7.7)


def test_message_has_title_numbers_and_top_three_headlines_with_links():
    heads = [Headline(f"id{i}", f"Headline {i}", f"https://n.example/{i}", 0.9, datetime.now(UTC)) for i in range(5)]
    title, body = render(finding(), heads, DetectorConfig(), replayed=False)
    assert title == "Negative news spike: NRVX"
    assert "9 negative of 11 unique stories (82%)" in body and "Time scale 5m" in body
    assert "between 17:05 and 17:10 UTC on 2025-03-13" in body
    assert "z = 6.4" in body and "0.3" in body and "40 earlier windows" in body
    assert "1. Headline 0\n   https://n.example/0" in body and "3. Headline 2" in body
    assert "Headline 3" not in body
    assert "finsent alert ticker/NRVX/2025-03-13T17:05:00Z/negative_spike" in body
    assert "replaying" not in body
    t2, b2 = render(Finding("topic", "Energy, Oil", WS, WS + 300, finding().decision), [], DetectorConfig(), True)
    assert t2 == "Negative news spike: Energy, Oil (topic)" and "Found while replaying history." in b2


def test_a_ticker_alerts_message_gives_each_headlines_sentiment_toward_the_ticker():
    now = datetime.now(UTC)
    heads = [Headline("a", "Walmart cuts forecast, Target gains", None, 0.8, now, sentiment="negative",
                      sentiment_score=-0.81, headline_sentiment="neutral", headline_score=0.04),
             Headline("b", "Walmart slumps", None, 0.9, now, sentiment="negative", sentiment_score=-0.9,
                      headline_sentiment="negative", headline_score=-0.9),
             Headline("c", "Walmart recalls toys", None, 0.7, now)]  # without per-ticker fields: no line
    _, body = render(finding(), heads, DetectorConfig(), replayed=False)
    lines = body.splitlines()
    i = lines.index("1. Walmart cuts forecast, Target gains")
    assert lines[i + 1] == "   sentiment toward NRVX: negative (-0.81); the headline's: neutral (+0.04)"
    j = lines.index("2. Walmart slumps")
    assert lines[j + 1] == "   sentiment toward NRVX: negative (-0.90)"  # the same as the headline's: said once
    k = lines.index("3. Walmart recalls toys")
    assert k == len(lines) - 1 or "sentiment toward" not in lines[k + 1]
    # a topic alert keeps the headline's sentiment: no per-ticker line
    _, topic = render(Finding("topic", "Earnings", WS, WS + 300, finding().decision), heads, DetectorConfig(), False)
    assert "sentiment toward" not in topic


def test_message_and_explanation_say_the_scale_unique_stories_and_top_stories():
    from alerts.detector import parse_scale
    from alerts.service import explain
    from stream.base.config import AlertSettings

    hour = parse_scale("1h", AlertSettings())
    f = Finding("ticker", "NRVX", WS, WS + 3600, finding().decision, score_sum=-7.7, scale="1h",
                articles=15, negative_articles=13)
    heads = [Headline(f"id{i}", f"Story {i}", None, 0.9, datetime.now(UTC), f"s{i}") for i in range(4)]
    title, body = render(f, heads, hour, replayed=False)
    assert title == "Negative news spike: NRVX [1h]"
    assert "Time scale 1h (60 minutes)" in body and "13 negative of 15 articles counting copies" in body
    assert body.rstrip().endswith("finsent alert ticker/NRVX/2025-03-13T17:05:00Z/negative_spike/1h")
    why = explain(f, heads, hour)
    assert why.startswith("[1h] 9 negative stories (of 11) in 60 minutes against 0.3 expected, z = 6.4")
    assert "Story 0 | Story 1 | Story 2" in why and "Story 3" not in why
    day = parse_scale("1d", AlertSettings())
    assert day.anchored and "the day so far" in explain(f, [], day)


def test_parse_since():
    now = datetime(2025, 3, 13, 12, 0, tzinfo=UTC)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2025-03-12", now) == datetime(2025, 3, 12, tzinfo=UTC)
    assert parse_since("2025-03-12T10:00:00+01:00", now) == datetime(2025, 3, 12, 9, tzinfo=UTC)
    with pytest.raises(UserError):
        parse_since("yesterday", now)


def test_format_table():
    ws = datetime.fromtimestamp(WS, UTC)
    a = Alert(
        id=7, scope_kind="ticker", scope="NRVX", window_start=ws, window_end=ws + timedelta(minutes=5),
        rule="negative_spike", articles=11, negative=9, negative_share=9 / 11, mean_score=-0.7, baseline=0.3,
        baseline_std=0.55, baseline_windows=40, z=6.4, top_article_ids=["a"], title="Negative news spike: NRVX",
        message="x\n\nTop negative headlines:\n1. Norvex shares plunge 20%\n   https://x", replayed=True,
        watermark=None, created_at=ws, delivery_status="suppressed", attempts=0, next_attempt_at=None,
        delivered_to=[], last_error=None, delivered_at=None,
    )
    out = format_table([a])
    assert "2025-03-13 17:05-17:10" in out and "NRVX" in out and "9/11" in out and "82%" in out
    assert "suppressed [replay]" in out and "Norvex shares plunge 20%" in out
    assert a.key == alert_key("ticker", "NRVX", ws, "negative_spike")


def test_a_flag_of_the_source_shows_in_the_alert():
    """An EDGAR 8-K item 1.03 flags its article "bankruptcy": the alert's text says so beside the headline."""
    from alerts.service import explain, render

    f = finding()
    heads = [Headline("sec-1", "Zorblax Widgets files an 8-K on bankruptcy or receivership", None, 0.9,
                      datetime.now(UTC), "sec-1", [], flags=["bankruptcy"]),
             Headline("x", "Other news", None, 0.8, datetime.now(UTC), "x", [])]
    _, body = render(f, heads, DetectorConfig(), replayed=False)
    assert "1. [BANKRUPTCY] Zorblax Widgets files" in body
    assert "flagged by its source: bankruptcy" in body and "2. Other news" in body
    assert "[BANKRUPTCY] Zorblax" in explain(f, heads, DetectorConfig())
