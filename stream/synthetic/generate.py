"""Synthetic news stream: a realistic trading day of headlines, with planted negative spikes.

Used by ``finsent demo``, the alert quality tests and the benchmarks::

    from stream.synthetic.generate import Spike, generate_stream, universe
    spike = Spike(ticker="NRVX", at=datetime(2025, 3, 13, 17, 0, tzinfo=timezone.utc), size=12)
    for msg in generate_stream(start, timedelta(hours=16), tickers=200, rate_per_min=40, spikes=[spike], seed=0):
        ...  # news.raw messages (DESIGN.md schema), in event-time order

What a generated day looks like (event times; the trading calendar is New
York's, anchored on the ``start`` date):

* **Universe**: ``tickers`` fictional listed companies (names, tickers and
  sectors are made up, so no headline can be mistaken for news about a real
  company), with Zipf-like news popularity (a few names get most coverage).
* **Volume** follows an intraday profile: quiet overnight, pre-market pick-up,
  a burst at the 09:30 open, a midday lull, the close and after-hours earnings,
  with minute-to-minute overdispersion (a slowly varying log-normal factor).
  ``rate_per_min`` is the rate at profile 1.0 (a normal mid-session minute).
* **Mix**: ~70 % of items are about one company (sometimes two), the rest are
  market-wide (macro, Fed, rates, FX, oil, metals, politics).  Topics are the
  20 of the Twitter Financial News topic set; sentiment per topic is roughly
  15 % negative, 60 % neutral, 25 % positive.
* **Scheduled bursts** (``events=True``): a macro data release at 08:30, an
  FOMC decision at 14:00 and ~8 % of the companies reporting earnings (07:00
  before the open or 16:05 after the close), each a burst of mixed coverage
  that decays over the following half hour.  Mixed: beats, misses and in-line
  results all bring volume, not a one-sided negative flood.
* **Planted spikes** (``spikes=[Spike(...)]``): ``size`` unmistakably negative
  headlines about one ticker (or one topic) within ``duration_s`` seconds --
  plunges, probes, downgrades, recalls, resignations, lawsuits, spread over
  the topics such news falls into.
* **Rivalries** (``rivalries=[Rivalry(...)]``): ``size`` headlines naming two
  companies with opposite fortunes ("X cuts its forecast as Y gains market
  share"): bad news for ``loser``, good news for ``winner``, neither as a whole
  (their ``truth`` says so per ticker: ``ticker_sentiment``).  Per-company
  sentiment (issue 22) is about these.

Deterministic by ``seed``: the same arguments give the same messages, ids
included.  The background does not depend on the spikes or rivalries (planting
one adds items and changes nothing else), so a calm day and the same day with spikes can
be compared item for item.  ``truth=True`` adds a ``truth`` object (the
generator's own sentiment, topic and event) to every message; the pipeline
keeps unknown fields in ``articles.extra``.

Fast: ~100k items in a few seconds (pure Python, one pass, constant memory
per minute).

The word lists, headline templates, topic and sentiment mixes and the volume profile are data:
``templates.json`` next to this module.
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import hashlib
import json
import math
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time as dtime, timedelta
from functools import cache, lru_cache
from importlib import resources
from itertools import pairwise
from string import Formatter
from zoneinfo import ZoneInfo

from stream.base.labels import SENTIMENTS, TOPICS

NY = ZoneInfo("America/New_York")
DEFAULT_DAY = date(2025, 3, 13)  # a Thursday


# ============================================================================ universe
@dataclass(frozen=True)
class Company:
    ticker: str
    name: str
    sector: str
    weight: float  # share of company news about it (sums to 1 over the universe)


def _load(name: str = "templates.json") -> dict:
    """The generator's word lists, headline templates and mixes (a data file next to this module)."""
    return json.loads(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


DATA = _load()
SECTORS = tuple((s["name"], s["share"], tuple(s["suffixes"]), tuple(s["products"])) for s in DATA["sectors"])
_SECTOR_INFO = {s[0]: s for s in SECTORS}
_SYL1 = tuple(DATA["name_syllables"]["first"])
_SYL2 = tuple(DATA["name_syllables"]["second"])


def _ticker_for(name: str, taken: set[str], rng: random.Random) -> str:
    letters = re.sub(r"[^A-Z]", "", name.upper())
    consonants = letters[0] + re.sub(r"[AEIOU]", "", letters[1:])
    for cand in (consonants[:4], letters[:4], consonants[:3], letters[:3], letters[0] + consonants[1:3] + letters[-1]):
        if len(cand) >= 3 and cand not in taken:
            return cand
    while True:
        cand = letters[0] + "".join(rng.choice("ABCDEFGHKLMNPRSTVWXZ") for _ in range(3))
        if cand not in taken:
            return cand


@lru_cache(maxsize=16)
def universe(n: int = 200, zipf: float = 1.0, offset: float = 8.0) -> tuple[Company, ...]:
    """``n`` fictional companies, most covered first (deterministic; independent of the stream seed)."""
    rng = random.Random("finsent-universe-v1")
    names: set[str] = set()
    taken: set[str] = set()
    sector_names = [s[0] for s in SECTORS]
    sector_cum = list(_cumulative([s[1] for s in SECTORS]))
    out = []
    raw_w = [1.0 / (i + offset) ** zipf for i in range(n)]
    total = sum(raw_w)
    for i in range(n):
        sector = sector_names[bisect.bisect_right(sector_cum, rng.random() * sector_cum[-1])]
        for _ in range(1000):
            base = rng.choice(_SYL1) + rng.choice(_SYL2)
            name = f"{base} {rng.choice(_SECTOR_INFO[sector][2])}"
            if base not in names:
                break
        names.add(base)
        tk = _ticker_for(base, taken, rng)
        taken.add(tk)
        out.append(Company(tk, name, sector, raw_w[i] / total))
    return tuple(out)


def _cumulative(weights: Sequence[float]) -> Iterator[float]:
    acc = 0.0
    for w in weights:
        acc += w
        yield acc


def quiet_tickers(n: int = 200, k: int = 5, seed: int = 0) -> list[str]:
    """``k`` mid/low-coverage tickers (good spike targets: 1-3 articles an hour)."""
    cos = universe(n)
    lo, hi = len(cos) // 4, len(cos)
    rng = random.Random(f"quiet:{seed}")
    return [c.ticker for c in rng.sample(cos[lo:hi], k)]


# ============================================================================ templates
# Slots: {co} company, {tk} ticker, {co2}/{tk2} a second company, {topic_name}, and the values of
# _SLOTS: {pct} a normal move, {bigpct} a large move, {bank} a broker, {pt}/{pt2} price targets,
# {q} quarter, {eps}/{eps2}, {amt} billions, {mamt} millions, {exec} executive role, {person},
# {product}, {div}, {yld}, {bp}, {idx}, {cur}, {country}, {n}, {agency}, {regulator}, {month}, {day}.
# T[topic][sentiment]: headlines of one topic and sentiment.
T: dict[str, dict[str, tuple[str, ...]]] = {
    topic: {s: tuple(by_sentiment[s]) for s in SENTIMENTS} for topic, by_sentiment in DATA["templates"].items()
}
# Planted spikes: unmistakably negative, spread over the topics such news falls into.
SHOCK: tuple[tuple[str, str], ...] = tuple((s["topic"], s["template"]) for s in DATA["shock"])
# Rivalries: {co} is the loser, {co2} the winner.
RIVALRY: tuple[tuple[str, str], ...] = tuple((s["topic"], s["template"]) for s in DATA["rivalry"])
TOPIC_SHOCK: dict[str, tuple[str, ...]] = {t: tuple(v) for t, v in DATA["topic_shock"].items()}
_GENERIC_SHOCK = tuple(DATA["generic_shock"])
MARKET_SUMMARIES = {s: tuple(v) for s, v in DATA["summaries"]["market"].items()}
SUMMARIES = {s: tuple(v) for s, v in DATA["summaries"]["company"].items()}
_W = DATA["words"]
BANKS, AGENCIES, REGULATORS, EXECS = (tuple(_W[k]) for k in ("banks", "agencies", "regulators", "execs"))
FIRST, LAST = tuple(_W["first_names"]), tuple(_W["last_names"])
COUNTRIES, STATES, INDICES, MONTHS = (tuple(_W[k]) for k in ("countries", "states", "indices", "months"))
OUTLETS = tuple((o["name"], o["domain"]) for o in DATA["outlets"])


def _slots_fn():
    r2 = lambda lo, hi, nd=1: lambda rng, c: f"{rng.uniform(lo, hi):.{nd}f}"  # noqa: E731 - a factory of slot fillers, like the lambdas below
    return {
        "pct": r2(0.8, 4.9), "pct0": r2(0.1, 0.4), "bigpct": lambda rng, c: str(rng.randint(12, 38)),
        "bank": lambda rng, c: rng.choice(BANKS), "agency": lambda rng, c: rng.choice(AGENCIES),
        "regulator": lambda rng, c: rng.choice(REGULATORS), "exec": lambda rng, c: rng.choice(EXECS),
        "person": lambda rng, c: f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        "pt": lambda rng, c: str(rng.randint(12, 480)), "pt2": lambda rng, c: str(rng.randint(12, 480)),
        "q": lambda rng, c: f"Q{rng.randint(1, 4)}", "qtr": lambda rng, c: rng.choice(("first", "second", "third", "fourth")),
        "eps": r2(0.05, 4.5, 2), "eps2": r2(0.05, 4.5, 2), "amt": r2(1.1, 9.8), "amt0": lambda rng, c: str(rng.choice((24, 39, 42, 58))),
        "mamt": lambda rng, c: str(rng.randint(20, 950)), "div": r2(0.05, 1.6, 2), "yld": r2(2.1, 5.4, 2),
        "bp": lambda rng, c: rng.choice(("25", "50")), "idx": lambda rng, c: rng.choice(INDICES),
        "country": lambda rng, c: rng.choice(COUNTRIES), "state": lambda rng, c: rng.choice(STATES),
        "n": lambda rng, c: str(rng.randint(2, 52)), "month": lambda rng, c: rng.choice(MONTHS),
        "day": lambda rng, c: str(rng.randint(1, 28)), "year": lambda rng, c: str(rng.randint(2027, 2055)),
        "fx": r2(1.02, 1.18, 4), "gold": lambda rng, c: f"{rng.randint(2000, 3100):,}",
        "sector": lambda rng, c: (c.sector if c else rng.choice(SECTORS)[0]).lower(),
        "product": lambda rng, c: rng.choice(_SECTOR_INFO[c.sector][3] if c else ("product",)),
    }


_SLOTS = _slots_fn()
_COMPANY_SLOTS = {"co", "tk", "co2", "tk2", "topic_name"}


@cache
def _fields(template: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f for _, f, _, _ in Formatter().parse(template) if f))


def _render(template: str, rng: random.Random, co: Company | None, co2: Company | None = None, topic: str | None = None) -> str:
    vals = {}
    for f in _fields(template):
        if f == "co":
            vals[f] = co.name if co else "The company"
        elif f == "tk":
            vals[f] = co.ticker if co else ""
        elif f == "co2":
            vals[f] = co2.name if co2 else "a rival"
        elif f == "tk2":
            vals[f] = co2.ticker if co2 else ""
        elif f == "topic_name":
            vals[f] = topic or "The market"
        else:
            vals[f] = _SLOTS[f](rng, co)
    text = template.format(**vals)
    return text[0].upper() + text[1:]


# Topic mixes (topic, weight) and sentiment mixes (negative, neutral, positive).
COMPANY_TOPICS = tuple(DATA["company_topics"].items())
SECTOR_TOPIC = dict(DATA["sector_topic"])
MARKET_TOPICS = tuple(DATA["market_topics"].items())
SENTIMENT_MIX = {t: tuple(mix) for t, mix in DATA["sentiment_mix"].items()}
# Intraday volume profile (New York hour, multiplier); linear in between.
PROFILE = tuple(tuple(p) for p in DATA["volume_profile"])


def profile(hour: float) -> float:
    """Volume multiplier at a New York hour of day."""
    for (h0, v0), (h1, v1) in pairwise(PROFILE):
        if h0 <= hour <= h1:
            return v0 + (v1 - v0) * (hour - h0) / (h1 - h0)
    return PROFILE[-1][1]


# ============================================================================ spikes and events
@dataclass(frozen=True)
class Spike:
    """A planted burst of negative news: about ``ticker`` (or, without one, ``topic``)."""

    ticker: str | None = None
    at: datetime | None = None  # start of the burst (event time, aware)
    size: int = 12  # negative articles
    duration_s: int = 180  # spread over this many seconds
    topic: str | None = None  # a topic-wide burst (e.g. "Energy, Oil") when ticker is None

    def __post_init__(self):
        if self.at is None:
            raise ValueError("Spike.at is required")
        if self.ticker is None and self.topic is None:
            raise ValueError("Spike needs a ticker or a topic")
        if self.topic is not None and self.topic not in TOPICS:
            raise ValueError(f"unknown topic {self.topic!r}")
        if self.size < 1 or self.duration_s < 1:
            raise ValueError("Spike size and duration_s must be positive")

    @property
    def scope(self) -> tuple[str, str]:
        return ("ticker", self.ticker) if self.ticker else ("topic", self.topic)

    @property
    def end(self) -> datetime:
        return self.at + timedelta(seconds=self.duration_s)


@dataclass(frozen=True)
class Rivalry:
    """Headlines naming two companies with opposite fortunes: bad news for ``loser``, good for ``winner``."""

    loser: str
    winner: str
    at: datetime | None = None  # the first one (event time, aware)
    size: int = 3  # headlines
    duration_s: int = 3600  # spread over this many seconds

    def __post_init__(self):
        if self.at is None:
            raise ValueError("Rivalry.at is required")
        if self.loser == self.winner:
            raise ValueError("a rivalry needs two companies")
        if self.size < 1 or self.duration_s < 1:
            raise ValueError("Rivalry size and duration_s must be positive")


@dataclass(frozen=True)
class _Item:
    t: float  # epoch seconds
    kind: str  # background | earnings | macro | fomc | spike
    key: str  # for the id
    title: str
    tickers: tuple[str, ...]
    topic: str
    sentiment: str
    summary: str | None
    outlet: int
    event: str
    ticker_sentiment: tuple[tuple[str, str], ...] = ()  # (ticker, sentiment toward it), when it differs


def day_start(day: date = DEFAULT_DAY, hour: float = 4.0) -> datetime:
    """``hour`` (New York time) on ``day``, as an aware UTC datetime."""
    h = int(hour)
    m = round((hour - h) * 60)
    return datetime.combine(day, dtime(h, m), tzinfo=NY).astimezone(UTC)


def _ny(day: date, hour: float) -> float:
    return day_start(day, hour).timestamp()


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam < 30:
        limit, k, p = math.exp(-lam), 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k
    return max(0, round(rng.gauss(lam, math.sqrt(lam))))


def _pick(rng: random.Random, items: Sequence[tuple[str, float]], cum: Sequence[float]) -> str:
    return items[bisect.bisect_right(cum, rng.random() * cum[-1])][0]


def _sentiment(rng: random.Random, mix: tuple[float, float, float]) -> str:
    x = rng.random()
    return "negative" if x < mix[0] else ("neutral" if x < mix[0] + mix[1] else "positive")


class _Gen:
    def __init__(self, tickers: int, seed: int):
        self.cos = universe(tickers)
        self.by_ticker = {c.ticker: c for c in self.cos}
        self.co_cum = list(_cumulative([c.weight for c in self.cos]))
        self.ct_cum = list(_cumulative([w for _, w in COMPANY_TOPICS]))
        self.mt_cum = list(_cumulative([w for _, w in MARKET_TOPICS]))
        self.seed = seed

    def company(self, rng: random.Random) -> Company:
        return self.cos[bisect.bisect_right(self.co_cum, rng.random() * self.co_cum[-1])]

    def item(self, rng: random.Random, t: float, kind: str, key: str, *, co: Company | None, topic: str,
             sentiment: str, event: str, co2: Company | None = None, template: str | None = None) -> _Item:
        if template is None:
            template = rng.choice(T[topic][sentiment])
        if "{co2}" in template and co2 is None:
            co2 = self.company(rng)
            if co is not None and co2.ticker == co.ticker:
                co2 = self.cos[(self.cos.index(co2) + 1) % len(self.cos)]
        title = _render(template, rng, co, co2, topic)
        tickers: tuple[str, ...] = ()
        if co is not None and "{co}" in template:
            tickers = (co.ticker,)
            if rng.random() < 0.25:
                title = f"${co.ticker} - {title}"
            if co2 is not None and "{co2}" in template:
                tickers = (co.ticker, co2.ticker)
        summary = None
        if rng.random() < 0.35:
            summary = rng.choice((SUMMARIES if tickers else MARKET_SUMMARIES)[sentiment])
        return _Item(t, kind, key, title, tickers, topic, sentiment, summary, rng.randrange(len(OUTLETS)), event)

    def background(self, rng: random.Random, t: float, key: str) -> _Item:
        if rng.random() < 0.70:
            co = self.company(rng)
            topic = _pick(rng, COMPANY_TOPICS, self.ct_cum)
            if topic == "SECTOR":
                topic = SECTOR_TOPIC.get(co.sector, "Company, Product News")
            sentiment = _sentiment(rng, SENTIMENT_MIX[topic])
            templates = [x for x in T[topic][sentiment] if "{co}" in x] or T[topic][sentiment]
            return self.item(rng, t, "background", key, co=co, topic=topic, sentiment=sentiment,
                             event="background", template=rng.choice(templates))
        topic = _pick(rng, MARKET_TOPICS, self.mt_cum)
        sentiment = _sentiment(rng, SENTIMENT_MIX[topic])
        templates = [x for x in T[topic][sentiment] if "{co}" not in x] or T[topic][sentiment]
        co = None
        template = rng.choice(templates)
        if "{co}" in template:
            co = self.company(rng)
        return self.item(rng, t, "background", key, co=co, topic=topic, sentiment=sentiment,
                         event="background", template=template)


def _events(g: _Gen, start: float, end: float, rate: float, seed: int) -> list[_Item]:
    """Scheduled bursts of every New York day touched by [start, end)."""
    out: list[_Item] = []
    scale = rate / 40.0
    d0 = datetime.fromtimestamp(start, NY).date()
    d1 = datetime.fromtimestamp(end, NY).date()
    day = d0
    while day <= d1:
        rng = random.Random(f"{seed}:events:{day.isoformat()}")

        def burst(at: float, size: int, mean_s: float, topics, mix, event: str, co: Company | None = None,
                  rng: random.Random = rng):  # this day's generator, bound where defined
            tc = list(_cumulative([w for _, w in topics]))
            for i in range(size):
                t = at + min(rng.expovariate(1.0 / mean_s), 6 * mean_s)
                if not start <= t < end:
                    continue
                topic = _pick(rng, topics, tc)
                sentiment = _sentiment(rng, mix)
                cands = T[topic][sentiment]
                if co is not None:
                    cands = [x for x in cands if "{co}" in x] or cands
                out.append(g.item(rng, t, event.split(":")[0], f"{event}:{i}", co=co, topic=topic,
                                  sentiment=sentiment, event=event, template=rng.choice(cands)))

        if day.weekday() < 5:
            burst(_ny(day, 8.5), max(3, round(45 * scale)), 420.0,
                  (("Macro", 0.45), ("Markets", 0.2), ("Treasuries, Corporate Debt", 0.15), ("Currencies", 0.1),
                   ("Fed, Central Banks", 0.1)), (0.22, 0.56, 0.22), f"macro:{day}")
            burst(_ny(day, 14.0), max(3, round(40 * scale)), 480.0,
                  (("Fed, Central Banks", 0.5), ("Markets", 0.2), ("Treasuries, Corporate Debt", 0.2),
                   ("Currencies", 0.1)), (0.2, 0.6, 0.2), f"fomc:{day}")
            n_rep = max(1, round(0.08 * len(g.cos)))
            reporters = rng.sample(g.cos, n_rep)
            for j, co in enumerate(reporters):
                at = _ny(day, 7.0 if j % 2 == 0 else 16.0 + 5 / 60) + rng.uniform(0, 120)
                outcome = rng.random()
                # beat / in line / miss: volume either way, never a one-sided flood on a calm day
                mix = (0.05, 0.35, 0.60) if outcome < 0.65 else ((0.15, 0.65, 0.20) if outcome < 0.85 else (0.25, 0.50, 0.25))
                size = max(4, round((6 + 900 * co.weight) * max(scale, 0.25)))
                burst(at, size, 1200.0, (("Earnings", 0.5), ("Stock Movement", 0.25), ("Analyst Update", 0.15),
                                         ("Stock Commentary", 0.1)), mix, f"earnings:{co.ticker}", co=co)
        day += timedelta(days=1)
    return out


def _spike_items(g: _Gen, spikes: Sequence[Spike], seed: int) -> list[_Item]:
    out = []
    for i, sp in enumerate(spikes):
        rng = random.Random(f"{seed}:spike:{i}:{sp.ticker}:{sp.topic}:{sp.at.isoformat()}")
        t0 = sp.at.timestamp()
        times = sorted(t0 + rng.uniform(0, sp.duration_s) for _ in range(sp.size))
        if sp.ticker:
            co = g.by_ticker.get(sp.ticker) or Company(sp.ticker, f"{sp.ticker} Corp", "Technology", 0.0)
            order = list(range(len(SHOCK)))
            rng.shuffle(order)
            for n, t in enumerate(times):
                topic, tmpl = SHOCK[order[n % len(order)]]
                out.append(g.item(rng, t, "spike", f"spike:{i}:{n}", co=co, topic=topic, sentiment="negative",
                                  event=f"spike:{i}", template=tmpl))
        else:
            templates = TOPIC_SHOCK.get(sp.topic, _GENERIC_SHOCK)
            for n, t in enumerate(times):
                out.append(g.item(rng, t, "spike", f"spike:{i}:{n}", co=None, topic=sp.topic, sentiment="negative",
                                  event=f"spike:{i}", template=rng.choice(templates)))
    return out


def _rivalry_items(g: _Gen, rivalries: Sequence[Rivalry], seed: int) -> list[_Item]:
    out = []
    for i, rv in enumerate(rivalries):
        rng = random.Random(f"{seed}:rivalry:{i}:{rv.loser}:{rv.winner}:{rv.at.isoformat()}")
        loser, winner = (g.by_ticker.get(t) or Company(t, f"{t} Corp", "Technology", 0.0) for t in (rv.loser, rv.winner))
        order = list(range(len(RIVALRY)))
        rng.shuffle(order)
        t0 = rv.at.timestamp()
        for n, t in enumerate(sorted(t0 + rng.uniform(0, rv.duration_s) for _ in range(rv.size))):
            topic, tmpl = RIVALRY[order[n % len(order)]]
            it = g.item(rng, t, "rivalry", f"rivalry:{i}:{n}", co=loser, co2=winner, topic=topic,
                        sentiment="neutral", event=f"rivalry:{i}", template=tmpl)
            out.append(dataclasses.replace(it, summary=None, ticker_sentiment=(
                (loser.ticker, "negative"), (winner.ticker, "positive"))))
    return out


def _iso(t: float) -> str:
    return datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_stream(
    start: datetime | None = None,
    duration: timedelta = timedelta(hours=16),
    tickers: int = 200,
    rate_per_min: float = 40.0,
    spikes: Iterable[Spike] = (),
    seed: int = 0,
    *,
    rivalries: Iterable[Rivalry] = (),
    events: bool = True,
    truth: bool = False,
    names: bool = False,
) -> Iterator[dict]:
    """Yield news.raw messages in event-time order (see the module docstring).

    ``names``: write messages the way real feeds do, without a ``tickers`` field: a consumer
    must link the company names (with :func:`company_aliases` as its alias file, since the
    companies are fictional) and the occasional cashtag.

    ``start`` defaults to 04:00 New York time on 2025-03-13 (``day_start()``);
    the default 16 hours cover pre-market to 20:00.  With the default rate a
    day is ~30k messages.
    """
    start = start or day_start()
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    t_start = start.timestamp()
    t_end = t_start + duration.total_seconds()
    g = _Gen(tickers, seed)
    spikes = list(spikes)
    extra = sorted(
        (_events(g, t_start, t_end, rate_per_min, seed) if events else [])
        + [x for x in _spike_items(g, spikes, seed) + _rivalry_items(g, list(rivalries), seed) if t_start <= x.t < t_end],
        key=lambda x: (x.t, x.key),
    )
    ei = 0
    rng = random.Random(f"{seed}:background")
    noise = 0.0
    seq = 0
    minute = math.floor(t_start / 60) * 60
    while minute < t_end:
        ny = datetime.fromtimestamp(minute, NY)
        hour = ny.hour + ny.minute / 60
        noise = 0.92 * noise + rng.gauss(0.0, 0.08)
        lam = rate_per_min * profile(hour) * math.exp(noise)
        lo = max(minute, t_start)
        hi = min(minute + 60, t_end)
        n = _poisson(rng, lam * (hi - lo) / 60.0)
        batch = []
        for t in sorted(rng.uniform(lo, hi) for _ in range(n)):
            batch.append(g.background(rng, t, f"bg:{seq}"))
            seq += 1
        while ei < len(extra) and extra[ei].t < minute + 60:
            batch.append(extra[ei])
            ei += 1
        batch.sort(key=lambda x: x.t)
        for it in batch:
            yield _message(it, seed, t_start, truth, names)
        minute += 60


def _message(it: _Item, seed: int, t_start: float, truth: bool, names: bool = False) -> dict:
    published = _iso(it.t)
    digest = hashlib.sha1(f"{seed}|{int(t_start)}|{it.key}|{published}|{it.title}".encode()).hexdigest()
    outlet, domain = OUTLETS[it.outlet]
    msg = {
        "id": f"gen-{digest[:20]}",
        "published_at": published,
        "title": it.title,
        "source": outlet,
        "url": f"https://{domain}/news/{published[:10]}/{digest[:12]}",
        "tickers": list(it.tickers),
    }
    if names:
        del msg["tickers"]  # like a real feed: the names are in the text
    if it.summary:
        msg["summary"] = it.summary
    if truth:
        msg["truth"] = {"sentiment": it.sentiment, "topic": it.topic, "event": it.event}
        if it.ticker_sentiment:
            msg["truth"]["ticker_sentiment"] = dict(it.ticker_sentiment)
    return msg


def company_aliases(tickers: int = 200, extra: Iterable[str] = ()) -> dict[str, str]:
    """``{company name: ticker}`` of the fictional universe (and of ``extra`` spike tickers outside
    it, named "<TICKER> Corp"): the alias file that lets the linker find them by name."""
    aliases = {c.name: c.ticker for c in universe(tickers)}
    known = set(aliases.values())
    aliases.update({f"{t} Corp": t for t in extra if t not in known})
    return aliases


def write_aliases(path, tickers: int = 200, extra: Iterable[str] = ()) -> int:
    """Write :func:`company_aliases` as the ``ticker,alias`` CSV of the ``aliases`` setting."""
    rows = company_aliases(tickers, extra)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["ticker", "alias"])
        for name, ticker in sorted(rows.items()):
            w.writerow([ticker, name])
    return len(rows)


def write_jsonl(path, messages: Iterable[dict]) -> int:
    """Write messages as JSON lines (the archive format ``finsent replay`` reads); returns the count."""
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for m in messages:
            fh.write(json.dumps(m, ensure_ascii=False))
            fh.write("\n")
            n += 1
    return n
