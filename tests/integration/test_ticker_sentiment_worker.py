"""Per-company sentiment end to end (issue 22): headlines that name Walmart and Target with opposite
fortunes go through news.raw and the real worker (a tiny checkpoint with an entity head, on the default
ONNX CPU path); each ticker's buckets and alerts follow the sentiment toward that ticker, not the
headline's.

The tiny checkpoint's answers are random but deterministic: the test reads them first (the same
checkpoint and CPU path in this process, each ticker's mentions found in the text on their own), picks
headlines that are bad news for WMT, not for TGT, and not negative as a whole, and states the expected
buckets and alerts from those answers.  Wired to the headline's sentiment, WMT would not alert; with
the tickers' answers swapped, TGT would."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from model import ort
from model.engine import load_engine
from model.entities import EntityQuery, find_mentions
from stream.messages.raw_message import parse_message
from tests.integration.workers import Worker, article_count, finsent, query, wait_for, write_jsonl
from tests.support.tiny_model import make_tiny_checkpoint

NAMES = {"WMT": "Walmart", "TGT": "Target"}
BAD = ("cuts its forecast", "warns on margins", "recalls products", "faces a probe", "misses estimates",
       "lays off staff", "slumps", "loses market share", "shuts stores", "delays payments")
GOOD = ("gains shoppers", "raises guidance", "beats estimates", "wins customers", "rallies", "expands stores",
        "lifts its dividend", "posts record sales", "hires staff", "adds stores")
WHEN = ("in March", "in April", "this spring", "after the holidays", "on Tuesday", "this quarter")
T0 = datetime(2025, 3, 13, 14, 0, tzinfo=UTC)
ENV = {"FINSENT_CPU_PATH": "onnx", "FINSENT_ALERTS_WARMUP_WINDOWS": "3", "FINSENT_ALERTS_SCALES": "5m",
       "FINSENT_ALERTS_STORY_THRESHOLD": "0.95"}  # templated headlines: not near-duplicates of one story


def candidates(n: int = 400) -> list[str]:
    """Distinct headlines naming Walmart and Target, both of which the shipped linker links."""
    rng = random.Random(22)
    out: list[str] = []
    while len(out) < n:
        t = f"Walmart {rng.choice(BAD)} {rng.choice(WHEN)} while Target {rng.choice(GOOD)} after {rng.randint(2, 90)} days"
        if t not in out and parse_message({"title": t, "published_at": "2025-03-13T14:00:00Z"}).tickers == ("WMT", "TGT"):
            out.append(t)
    return out


def read(engine, texts: list[str]):
    """(headline sentiment, {ticker: (sentiment, score)}) per text, each ticker's mentions found on their own."""
    preds = engine.predict(texts, entities=[[EntityQuery(find_mentions(t, n)) for n in NAMES.values()] for t in texts])
    return [(p.sentiment, {tk: (e.sentiment, e.sentiment_score) for tk, e in zip(NAMES, p.entities)}) for p in preds]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The first tiny seed whose readings give a spike for WMT alone and a calm background."""
    root = tmp_path_factory.mktemp("pc-model")
    texts = candidates()
    for seed in range(12):
        ck = make_tiny_checkpoint(root / f"ck{seed}", seed=seed, entity=True)[0]
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(ort.ENV_CACHE, str(root / "onnx"))
            engine = load_engine(ck, "cpu", cpu_path="onnx", warmup=False)
        readings = dict(zip(texts, read(engine, texts)))
        spike = [t for t, (h, r) in readings.items()
                 if h != "negative" and r["WMT"][0] == "negative" and r["TGT"][0] != "negative"]
        calm = [t for t, (h, r) in readings.items() if h != "negative" and "negative" not in {s for s, _ in r.values()}]
        if len(spike) >= 10 and len(calm) >= 60:
            return ck, root / "onnx", readings, spike[:10], calm[:60]
    pytest.fail("no tiny seed gives 10 WMT-only negative and 60 calm headlines")


def test_each_tickers_buckets_and_alerts_follow_its_own_sentiment(stack, settings, tmp_path, model):
    ck, cache, readings, spike, calm = model
    # a calm hour, one headline a minute, then 10 headlines bad for Walmart only within 3 minutes, then calm
    msgs = [(T0 + timedelta(minutes=i), t) for i, t in enumerate(calm[:50])]
    burst_at = T0 + timedelta(minutes=50, seconds=20)
    msgs += [(burst_at + timedelta(seconds=17 * i), t) for i, t in enumerate(spike)]
    msgs += [(T0 + timedelta(minutes=54 + i), t) for i, t in enumerate(calm[50:60])]
    messages = [{"id": f"pc{i}", "published_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "title": t, "source": "wire"}
                for i, (at, t) in enumerate(msgs)]
    archive = write_jsonl(tmp_path / "pc.jsonl", messages)
    s = settings.replace(model=str(ck))
    env = {**ENV, ort.ENV_CACHE: str(cache)}
    worker = Worker(s, tmp_path / "worker.log", **env).start()
    try:
        res = finsent(s, "replay", str(archive), **env)
        assert res.returncode == 0, res.stderr
        wait_for(lambda: article_count(s) == len(messages), 240, "every headline stored", worker)
        wait_for(lambda: query(s, "SELECT count(*) FROM alerts WHERE scope = 'WMT'")[0][0] > 0, 120,
                 "WMT's alert", worker)
    finally:
        worker.stop()

    # what the worker stored for each ticker is the entity head's reading of that ticker's mentions
    stored = {title: (sent, ts) for title, sent, ts in query(s, "SELECT title, sentiment, ticker_sentiment FROM articles")}
    for title, (head, ts) in stored.items():
        want_head, want = readings[title]
        assert head == want_head
        assert set(ts) == {"WMT", "TGT"}
        for tk, (sent, score) in want.items():
            assert (ts[tk]["sentiment"], ts[tk]["source"]) == (sent, "entity"), (title, tk)
            assert ts[tk]["sentiment_score"] == pytest.approx(score, abs=1e-5)

    # ticker buckets: by the sentiment toward the ticker; 'all' by the headline's
    want: dict[str, Counter] = defaultdict(Counter)
    for _, t in msgs:
        head, r = readings[t]
        want["all"][head] += 1
        for tk, (sent, _) in r.items():
            want[tk][sent] += 1
    got = {scope: (n, neg, neu, pos) for scope, n, neg, neu, pos in query(
        s, "SELECT scope, sum(articles), sum(negative), sum(neutral), sum(positive) FROM sentiment_minute"
           " WHERE scope_kind IN ('ticker', 'all') GROUP BY scope")}
    assert got == {k: (sum(c.values()), c["negative"], c["neutral"], c["positive"]) for k, c in want.items()}
    assert got["WMT"][1] == len(spike) and got["TGT"][1] == 0 and got["all"][1] == 0

    # alerts: WMT only (its headlines are negative for Walmart, neither for Target nor as a whole)
    alerts = query(s, "SELECT scope_kind, scope, negative, top_article_ids, message FROM alerts")
    assert {(k, sc) for k, sc, *_ in alerts} == {("ticker", "WMT")}
    _kind, _scope, negative, top, message = alerts[0]
    spike_ids = {m["id"] for m in messages if m["title"] in spike}
    # its top articles are the most negative toward WMT (by the headline's, none would qualify)
    assert negative >= 5 and len(top) == 5 and set(top) <= spike_ids
    # the message gives, for each top headline, the sentiment toward WMT (and the headline's, which differs)
    first = next(t for t in spike if t in message)
    sent, score = readings[first][1]["WMT"]
    assert f"sentiment toward WMT: negative ({score:+.2f}); the headline's: {readings[first][0]}" in message
