"""The synthetic news-stream generator (stream/synthetic/generate.py)."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

import stream.synthetic.generate as gen
from stream.base.labels import SENTIMENTS
from stream.synthetic.generate import (
    SHOCK,
    TOPICS,
    Rivalry,
    Spike,
    day_start,
    generate_stream,
    profile,
    quiet_tickers,
    universe,
    write_jsonl,
)

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
START = day_start()
HOURS4 = timedelta(hours=4)


def ts(m: dict) -> datetime:
    return datetime.fromisoformat(m["published_at"].replace("Z", "+00:00"))


def test_messages_follow_the_news_raw_schema_in_event_time_order():
    msgs = list(generate_stream(START, HOURS4, seed=1))
    assert len(msgs) > 2000
    ids = [m["id"] for m in msgs]
    assert len(set(ids)) == len(ids)
    for m in msgs:
        assert set(m) <= {"id", "published_at", "title", "summary", "source", "url", "tickers"}
        assert RFC3339.match(m["published_at"])
        assert isinstance(m["title"], str) and m["title"].strip()
        assert isinstance(m["tickers"], list)
        assert m["url"].startswith("https://") and m["source"]
        assert START <= ts(m) < START + HOURS4
    times = [ts(m) for m in msgs]
    assert times == sorted(times)


def test_deterministic_by_seed():
    a = list(generate_stream(START, HOURS4, seed=3))
    b = list(generate_stream(START, HOURS4, seed=3))
    c = list(generate_stream(START, HOURS4, seed=4))
    assert a == b
    assert [m["id"] for m in a] != [m["id"] for m in c]


def test_a_realistic_day_mix():
    msgs = list(generate_stream(seed=0, truth=True))
    topics = Counter(m["truth"]["topic"] for m in msgs)
    assert set(topics) == set(TOPICS)  # all 20 topics
    sent = Counter(m["truth"]["sentiment"] for m in msgs)
    assert 0.10 < sent["negative"] / len(msgs) < 0.22
    assert sent["neutral"] > sent["positive"] > sent["negative"]
    tickers = Counter(t for m in msgs for t in m["tickers"])
    assert len(tickers) >= 190  # hundreds of tickers covered
    top, bottom = tickers.most_common()[0][1], tickers.most_common()[-1][1]
    assert top > 10 * bottom  # a few names get most of the coverage
    events = Counter(m["truth"]["event"].split(":")[0] for m in msgs)
    assert events["earnings"] > 100 and events["macro"] > 10 and events["fomc"] > 10
    assert 0.55 < sum(1 for m in msgs if m["tickers"]) / len(msgs) < 0.85


def test_intraday_volume_profile():
    msgs = list(generate_stream(seed=0))
    per_hour = Counter(ts(m).astimezone(UTC).hour for m in msgs)
    # 09:30-10:30 New York (13:30-14:30 UTC in March) is far busier than 04:00-05:00 (08:00 UTC)
    assert per_hour[14] > 4 * per_hour[8]
    assert profile(9.75) > profile(12.5) > profile(2.0)


def test_planted_spike_is_negative_news_about_its_ticker_and_changes_nothing_else():
    tk = quiet_tickers(k=1)[0]
    at = START + timedelta(hours=2)
    calm = list(generate_stream(START, HOURS4, seed=2, truth=True))
    spiked = list(generate_stream(START, HOURS4, seed=2, truth=True, spikes=[Spike(ticker=tk, at=at, size=12)]))
    extra = [m for m in spiked if m["truth"]["event"] == "spike:0"]
    assert len(extra) == 12 and len(spiked) == len(calm) + 12
    assert [m for m in spiked if m["truth"]["event"] != "spike:0"] == calm
    shock_topics = {t for t, _ in SHOCK}
    for m in extra:
        assert m["tickers"] == [tk]
        assert m["truth"]["sentiment"] == "negative" and m["truth"]["topic"] in shock_topics
        assert at <= ts(m) < at + timedelta(seconds=180)
    assert len({m["truth"]["topic"] for m in extra}) >= 4  # spread over topics, like real coverage


def test_rivalries_name_two_companies_with_opposite_fortunes_and_change_nothing_else():
    loser, winner = universe()[10], universe()[11]
    at = START + timedelta(hours=1)
    calm = list(generate_stream(START, HOURS4, seed=2, truth=True, names=True))
    rv = Rivalry(loser=loser.ticker, winner=winner.ticker, at=at, size=6, duration_s=1800)
    mixed = list(generate_stream(START, HOURS4, seed=2, truth=True, names=True, rivalries=[rv]))
    extra = [m for m in mixed if m["truth"]["event"] == "rivalry:0"]
    assert len(extra) == 6 and [m for m in mixed if m["truth"]["event"] != "rivalry:0"] == calm
    assert len({m["title"] for m in extra}) == 6 and len({m["truth"]["topic"] for m in extra}) >= 3
    for m in extra:
        assert loser.name in m["title"] and winner.name in m["title"] and "tickers" not in m
        assert m["truth"]["ticker_sentiment"] == {loser.ticker: "negative", winner.ticker: "positive"}
        assert m["truth"]["sentiment"] == "neutral"  # neither good nor bad news as a whole
        assert at <= ts(m) < at + timedelta(seconds=1800)
    with_tickers = list(generate_stream(START, HOURS4, seed=2, truth=True, rivalries=[rv]))
    assert {tuple(m["tickers"]) for m in with_tickers if m["truth"]["event"] == "rivalry:0"} == {
        (loser.ticker, winner.ticker)}
    with pytest.raises(ValueError):
        Rivalry(loser="A", winner="A", at=at)
    with pytest.raises(ValueError):
        Rivalry(loser="A", winner="B")


def test_topic_spike():
    at = START + timedelta(hours=1)
    msgs = list(generate_stream(START, HOURS4, seed=2, truth=True, spikes=[Spike(topic="Energy, Oil", at=at, size=20)]))
    extra = [m for m in msgs if m["truth"]["event"] == "spike:0"]
    assert len(extra) == 20
    assert all(m["truth"]["topic"] == "Energy, Oil" and m["truth"]["sentiment"] == "negative" for m in extra)


def test_spike_validation():
    with pytest.raises(ValueError):
        Spike(ticker="X")
    with pytest.raises(ValueError):
        Spike(at=START)
    with pytest.raises(ValueError):
        Spike(topic="Nope", at=START)


def test_universe_is_fictional_stable_and_unique():
    cos = universe(300)
    assert len({c.ticker for c in cos}) == 300 and len({c.name for c in cos}) == 300
    assert cos == universe(300)
    assert sum(c.weight for c in cos) == pytest.approx(1.0)
    assert all(re.fullmatch(r"[A-Z]{3,4}", c.ticker) for c in cos)
    assert quiet_tickers(300, k=3, seed=1) == quiet_tickers(300, k=3, seed=1)


def test_fast_enough():
    t0 = time.perf_counter()
    n = sum(1 for _ in generate_stream(rate_per_min=140, seed=5))
    dt = time.perf_counter() - t0
    assert n > 100_000
    assert dt < 15, f"{n} items took {dt:.1f}s"  # ~1 s on an idle core


def test_write_jsonl(tmp_path):
    p = tmp_path / "day.jsonl"
    n = write_jsonl(p, generate_stream(START, timedelta(minutes=30), seed=0))
    rows = [json.loads(line) for line in p.read_text().splitlines()]
    assert n == len(rows) > 0 and all("published_at" in r for r in rows)


def test_the_template_data_covers_every_topic_and_sentiment_and_names_only_known_slots():
    """templates.json is data: a typo in it (a topic, a sentiment, a slot) fails here, not mid-demo."""
    assert set(gen.T) == set(TOPICS)
    assert all(set(by_sentiment) == set(SENTIMENTS) and all(by_sentiment.values()) for by_sentiment in gen.T.values())
    assert {t for t, _ in SHOCK} <= set(TOPICS) and set(gen.TOPIC_SHOCK) <= set(TOPICS)
    assert {t for t, _ in gen.RIVALRY} <= set(TOPICS)
    assert all("{co}" in x and "{co2}" in x for _, x in gen.RIVALRY)  # a rivalry names both companies
    assert {t for t, _ in gen.COMPANY_TOPICS} - {"SECTOR"} <= set(TOPICS)
    assert {t for t, _ in gen.MARKET_TOPICS} | set(gen.SECTOR_TOPIC.values()) <= set(TOPICS)
    assert set(gen.SENTIMENT_MIX) == set(TOPICS) and all(sum(m) == pytest.approx(1.0) for m in gen.SENTIMENT_MIX.values())
    known = set(gen._SLOTS) | gen._COMPANY_SLOTS
    templates = ([x for d in gen.T.values() for v in d.values() for x in v] + [x for _, x in SHOCK]
                 + [x for v in gen.TOPIC_SHOCK.values() for x in v] + list(gen._GENERIC_SHOCK)
                 + [x for _, x in gen.RIVALRY])
    unknown = {f for x in templates for f in gen._fields(x)} - known
    assert not unknown, f"templates name unknown slots: {unknown}"
