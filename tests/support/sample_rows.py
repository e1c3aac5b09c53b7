"""Deterministic scored-article streams for storage tests, the cookbook test and benchmarks.

:func:`sample_rows` yields :class:`storage.writer.ArticleRow` objects as the
pipeline would store them (scored, with tickers, topic and model_version), so
tests can fill a schema through the very writer path the worker uses without
Kafka or a model.  Volume follows a day/night cycle; each ticker has its own
sentiment bias; an optional negative spike concentrates bad news about one
ticker in a short window.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from storage.writer import ArticleRow
from stream.base.labels import TOPICS

TICKERS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM", "XOM", "NFLX",
           "BAC", "WMT", "KO", "PFE", "INTC", "DIS", "BA", "GS", "CVX", "AMD")
_NEG = ("plunges", "misses estimates", "faces probe", "cuts guidance", "recalls", "downgraded", "sued over")
_POS = ("beats estimates", "surges", "raises dividend", "upgraded", "wins contract", "record sales")
_NEU = ("to report earnings", "announces conference call", "files 10-Q", "names new CFO", "holds annual meeting")


@dataclass(frozen=True)
class Spike:
    ticker: str
    start: datetime
    minutes: int = 20
    articles: int = 30  # extra, mostly negative articles


def _probs(rng: random.Random, sentiment: str) -> tuple[float, float, float]:
    hi = rng.uniform(0.55, 0.98)
    rest = 1.0 - hi
    a = rng.uniform(0, rest)
    b = rest - a
    return {"negative": (hi, a, b), "neutral": (a, hi, b), "positive": (a, b, hi)}[sentiment]


def make_row(rng: random.Random, ts: datetime, *, tickers: list[str], topic: str, sentiment: str,
             model_version: str = "sample-1", source: str = "sample-wire", per_ticker: bool = False) -> ArticleRow:
    words = {"negative": _NEG, "neutral": _NEU, "positive": _POS}[sentiment]
    name = tickers[0] if tickers else topic.split(",")[0]
    title = f"{name} {rng.choice(words)}"
    if len(tickers) > 1:
        title += f" as {' and '.join(tickers[1:])} move"
    pn, pu, pp = _probs(rng, sentiment)
    ident = hashlib.sha256(f"{ts.isoformat()}|{title}|{rng.random()}".encode()).hexdigest()[:24]
    ticker_sentiment = _per_ticker(ident, tickers, sentiment, (pn, pu, pp)) if per_ticker and tickers else None
    return ArticleRow(
        id=ident, published_at=ts, source=source, url=f"https://news.example/{ident}", title=title,
        tickers=list(tickers), topic=topic, topic_score=round(rng.uniform(0.4, 0.99), 4), sentiment=sentiment,
        p_negative=pn, p_neutral=pu, p_positive=pp, sentiment_score=pp - pn, model_version=model_version,
        extra={"lang": "en"}, ticker_sentiment=ticker_sentiment,
    )


_OPPOSITE = {"negative": "positive", "positive": "negative", "neutral": "neutral"}


def _per_ticker(ident: str, tickers: list[str], sentiment: str, probs: tuple[float, float, float]) -> dict:
    """The sentiment toward each ticker (``articles.ticker_sentiment``): the first ticker's is the
    headline's; each further one has the opposite fortune half of the time ("Walmart cuts forecast,
    Target gains").  From a generator of its own (seeded by the id): the stream's draws do not move."""
    rng = random.Random(ident)
    out = {}
    for i, t in enumerate(tickers):
        own = _OPPOSITE[sentiment] if i and rng.random() < 0.5 else sentiment
        pn, pu, pp = probs if own == sentiment else _probs(rng, own)
        out[t] = {"sentiment": own, "p_negative": pn, "p_neutral": pu, "p_positive": pp,
                  "sentiment_score": pp - pn, "source": "entity"}
    return out


def sample_rows(
    start: datetime,
    end: datetime,
    *,
    per_hour: float = 12.0,
    seed: int = 7,
    tickers: tuple[str, ...] = TICKERS,
    topics: tuple[str, ...] = TOPICS,
    spikes: tuple[Spike, ...] = (),
    topic_bias: dict[str, float] | None = None,
    model_version: str = "sample-1",
    per_ticker: bool = False,
) -> Iterator[ArticleRow]:
    """Articles with published_at in [start, end), in time order, deterministic for a seed.  ``per_ticker``:
    with the sentiment toward each ticker (``ticker_sentiment``; the same articles otherwise)."""
    rng = random.Random(seed)
    bias = {t: rng.uniform(-0.25, 0.25) for t in tickers}  # per-ticker mood
    weights = [1.0 / (i + 1) for i in range(len(tickers))]  # Zipf popularity
    tweights = [1.0 / math.sqrt(i + 1) for i in range(len(topics))]
    topic_bias = topic_bias or {}
    t = start
    pending_spikes = sorted(spikes, key=lambda s: s.start)
    while t < end:
        hour = t.hour + t.minute / 60
        rate = per_hour * (0.35 + 0.65 * max(0.0, math.sin(math.pi * (hour - 6) / 14)) ** 2) * (
            0.6 if t.weekday() >= 5 else 1.0)
        t = t + timedelta(seconds=rng.expovariate(max(rate, 0.05) / 3600.0))
        while pending_spikes and pending_spikes[0].start <= t:
            sp = pending_spikes.pop(0)
            for _ in range(sp.articles):
                ts = sp.start + timedelta(seconds=rng.uniform(0, sp.minutes * 60))
                sent = "negative" if rng.random() < 0.85 else "neutral"
                yield make_row(rng, ts.replace(microsecond=0), tickers=[sp.ticker], topic="Stock Movement",
                               sentiment=sent, model_version=model_version, per_ticker=per_ticker)
        if t >= end:
            break
        k = 0 if rng.random() < 0.15 else (1 if rng.random() < 0.8 else 2)
        chosen: list[str] = []
        while len(chosen) < k:
            c = rng.choices(tickers, weights)[0]
            if c not in chosen:
                chosen.append(c)
        topic = rng.choices(topics, tweights)[0]
        mood = sum(bias[c] for c in chosen) + topic_bias.get(topic, 0.0)
        r = rng.random()
        p_neg, p_pos = 0.25 - mood / 2, 0.3 + mood / 2
        sent = "negative" if r < p_neg else "positive" if r < p_neg + p_pos else "neutral"
        yield make_row(rng, t.replace(microsecond=0), tickers=chosen, topic=topic, sentiment=sent,
                       model_version=model_version, per_ticker=per_ticker)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def write_all(writer, rows, batch_size: int = 500) -> int:
    """Write ``rows`` through ``writer.write_batch`` in batches; returns how many were inserted."""
    n = 0
    buf = []
    for r in rows:
        buf.append(r)
        if len(buf) >= batch_size:
            n += len(writer.write_batch(buf).inserted)
            buf = []
    if buf:
        n += len(writer.write_batch(buf).inserted)
    return n
