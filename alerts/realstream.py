"""A real news archive through the worker's own parsing, scored once by the shipped model.

Used by ``python -m alerts.quality --real PATH``: every row goes through the
replay's column mapping and :func:`stream.messages.raw_message.parse_message` (the same id,
ticker and text rules as ``finsent replay`` + the worker), duplicate ids are
dropped as the worker drops them, and each distinct model text is scored once
by :func:`model.engine.load_engine` in batches.  The scores are cached under
``cache_dir`` (default ``/tmp/finsent-quality``) keyed by the archive's path,
size and mtime and the model version, so tuning runs take seconds.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alerts.detector import from_epoch, to_epoch
from alerts.simulator import Detector
from model.checkpoint import read_config
from model.engine import load_engine
from model.ticker_sentiment import sentiment_toward
from stream.base.config import machine_settings
from stream.base.labels import SENTIMENTS, TOPICS
from stream.messages.novelty import StoryIndex
from stream.messages.raw_message import NewsItem
from stream.messages.replay import ColumnMap, ReplayStats, prepare, read_rows

if TYPE_CHECKING:
    from datetime import datetime

    import numpy.typing as npt

    from alerts.detector import DetectorConfig, Finding
    from stream.base.settings import AlertSettings

log = logging.getLogger("finsent.quality")

DEFAULT_CACHE = machine_settings().quality_cache  # FINSENT_QUALITY_CACHE


@dataclass(frozen=True)
class ScoredItem:
    item: NewsItem
    sentiment: str
    p_negative: float
    sentiment_score: float
    topic: str
    ticker_sentiment: dict[str, dict[str, Any]] | None = None  # {ticker: entry} toward each ticker (None: the headline's for all)


def load_items(path: Path) -> tuple[list[NewsItem], ReplayStats]:
    """Valid items of the archive in event-time order, first occurrence of each id only."""
    stats = ReplayStats()
    seen: set[str] = set()
    items: list[NewsItem] = []
    for p in prepare(read_rows(Path(path)), ColumnMap(), None, stats):
        if p.item is None or p.item.id in seen:
            continue
        seen.add(p.item.id)
        items.append(p.item)
    items.sort(key=lambda it: (it.published_at, it.id))
    return items, stats


def _cache_file(path: Path, model_version: str, cache_dir: Path) -> Path:
    st = Path(path).stat()
    key = hashlib.sha256(f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}|{model_version}".encode()).hexdigest()[:16]
    return cache_dir / f"scores-{key}.npz"


def score_items(items: list[NewsItem], path: Path, cache_dir: Path = DEFAULT_CACHE, batch: int = 4096,
                model: str | None = None) -> list[ScoredItem]:
    """Model scores for ``items``: each distinct text scored once, cached per archive and model version."""
    texts = sorted({it.model_text for it in items})
    cache = _cache_file(path, _model_version(model), cache_dir)
    known: list[str] = []
    k_sent = np.zeros((0, 3), np.float32)
    k_topic = np.zeros(0, np.int16)
    if cache.exists():  # the cache may hold more (a longer stretch) or less (scored in parts)
        z = np.load(cache, allow_pickle=False)
        known, k_sent, k_topic = z["texts"].tolist(), z["sent"], z["topic"]
    where = {t: i for i, t in enumerate(known)}
    missing = [t for t in texts if t not in where]
    if missing:
        log.info("scoring %d texts (%d cached)", len(missing), len(texts) - len(missing))
        engine = load_engine(model, "auto")
        m_sent = np.zeros((len(missing), 3), np.float32)
        m_topic = np.zeros(len(missing), np.int16)
        t0 = time.perf_counter()
        for i in range(0, len(missing), batch):
            tp, sp = engine.predict_proba(missing[i : i + batch])
            m_sent[i : i + batch] = sp
            m_topic[i : i + batch] = tp.argmax(1)
            done = min(i + batch, len(missing))
            log.info("scored %d/%d texts (%.0f/s)", done, len(missing), done / (time.perf_counter() - t0))
        known = known + missing
        k_sent = np.concatenate([k_sent, m_sent])
        k_topic = np.concatenate([k_topic, m_topic])
        store_scores(path, known, k_sent, k_topic, cache_dir, model)
        # numpy's text arrays drop trailing NULs: look texts up as they come back from the file
        where = {t: i for i, t in enumerate(np.array(known).tolist())}
        where.update({t: i for i, t in enumerate(known)})
    idx = np.array([where[t] for t in texts], dtype=np.int64)
    sent, topic = k_sent[idx], k_topic[idx]
    index = {t: i for i, t in enumerate(texts)}
    out = []
    for it in items:
        j = index[it.model_text]
        p = sent[j]
        out.append(ScoredItem(it, SENTIMENTS[int(p.argmax())], float(p[0]), float(p[2] - p[0]), TOPICS[int(topic[j])]))
    return out


def score_tickers(items: list[NewsItem], path: Path, cache_dir: Path = DEFAULT_CACHE, batch: int = 256,
                  model: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """The sentiment toward each item's tickers (``{id: {ticker: entry}}``, as the worker stores it in
    ``articles.ticker_sentiment``), from the same engine call the worker makes; cached beside the scores."""
    from model.ticker_sentiment import SPANS_VERSION, predict_per_ticker

    cache = _cache_file(path, f"{_model_version(model)}|per-ticker|{SPANS_VERSION}", cache_dir).with_suffix(".json")
    known: dict[str, dict[str, dict[str, Any]]] = json.loads(cache.read_text()) if cache.exists() else {}
    missing = [it for it in items if it.tickers and it.id not in known]
    if missing:
        log.info("scoring the tickers of %d items (%d cached)", len(missing), len(known))
        engine = load_engine(model, "auto")
        t0 = time.perf_counter()
        for i in range(0, len(missing), batch):
            part = missing[i : i + batch]
            _, per = predict_per_ticker(engine, [it.model_text for it in part], [it.ticker_links for it in part],
                                        [it.tickers for it in part])
            known.update({it.id: e for it, e in zip(part, per) if e is not None})
            done = min(i + batch, len(missing))
            if done % (batch * 40) == 0 or done == len(missing):
                log.info("scored %d/%d (%.0f/s)", done, len(missing), done / (time.perf_counter() - t0))
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.stem + ".tmp.json")
        tmp.write_text(json.dumps(known))
        os.replace(tmp, cache)
    return known


def store_scores(path: Path, texts: Iterable[str], sent: npt.ArrayLike, topic: npt.ArrayLike,
                 cache_dir: Path = DEFAULT_CACHE, model: str | None = None) -> Path:
    """Write scores computed elsewhere (e.g. in parallel shards) as the archive's cache."""
    cache = _cache_file(path, _model_version(model), cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.stem + ".tmp.npz")
    np.savez(tmp, texts=np.array(list(texts)), sent=np.asarray(sent, np.float32), topic=np.asarray(topic, np.int16))
    os.replace(tmp, cache)
    return cache


def _model_version(model: str | None) -> str:
    return read_config(model).model_version


# ------------------------------------------------------------------ the replay and its report
@dataclass(frozen=True)
class Evidence:
    t: int
    p_negative: float
    id: str
    story_id: str
    title: str


@dataclass
class RealRun:
    detector: Detector
    negatives: dict[tuple[str, str], list[Evidence]]  # (kind, scope) -> [Evidence] in event-time order
    articles: int
    stories: int


def replay_scored(scored: list[ScoredItem], cfgs: Sequence[DetectorConfig], a: AlertSettings,
                  observe_every_s: int = 10) -> RealRun:
    """Novelty, then the detector at every scale, as the worker chains them (in event-time order)."""
    novelty = StoryIndex(a.story_horizon_s, a.story_threshold)
    det = Detector(cfgs, a.lateness_s, a.incident_gap_s)
    negatives: dict[tuple[str, str], list[Evidence]] = defaultdict(list)
    last = None
    stories = 0
    for s in scored:
        it = s.item
        t = to_epoch(it.published_at)
        mark = novelty.assign(it.id, t, it.model_text)
        stories += mark.first
        det.add(t, it.tickers, s.topic, s.sentiment, s.sentiment_score, mark.first, s.ticker_sentiment)
        for tk in set(it.tickers):  # negative toward the ticker: its own sentiment, else the headline's
            entry = (s.ticker_sentiment or {}).get(tk)
            if sentiment_toward(s.ticker_sentiment, tk, s.sentiment)[0] == "negative":
                p_neg = float(entry["p_negative"]) if entry else s.p_negative
                negatives[("ticker", tk)].append(Evidence(t, p_neg, it.id, mark.story_id, it.title))
        if s.sentiment == "negative":
            ev = Evidence(t, s.p_negative, it.id, mark.story_id, it.title)
            negatives[("topic", s.topic)].append(ev)
            negatives[("all", "all")].append(ev)
        if last is None or t - last >= observe_every_s:
            det.observe(t)
            last = t
    if det.max_event_time is not None:
        det.observe(det.max_event_time + a.lateness_s + max(c.window_s for c in det.cfgs))
    return RealRun(det, negatives, len(scored), stories)


def top_evidence(run: RealRun, f: Finding, n: int = 3, distinct: bool = True) -> list[Evidence]:
    """The ``n`` most negative articles of the alert's window (one per story with ``distinct``)."""
    evs = run.negatives.get((f.scope_kind, f.scope), [])
    lo = bisect.bisect_left([e.t for e in evs], f.window_start)
    hi = bisect.bisect_left([e.t for e in evs], f.window_end)
    out: list[Evidence] = []
    seen: set[str] = set()
    for e in sorted(evs[lo:hi], key=lambda e: (-e.p_negative, e.t, e.id)):
        if distinct and e.story_id in seen:
            continue
        seen.add(e.story_id)
        out.append(e)
        if len(out) == n:
            break
    return out


def quarter(t: int) -> str:
    d = from_epoch(t)
    return f"{d.year}Q{(d.month - 1) // 3 + 1}"


def real_report(path: Path, cfgs: Sequence[DetectorConfig], a: AlertSettings, cache_dir: Path = DEFAULT_CACHE,
                strongest: int = 20, until: datetime | None = None, per_ticker: bool = True) -> str:
    """``per_ticker``: a ticker counts the sentiment toward it, as the worker does; False: the headline's
    for every ticker (the product before per-company sentiment)."""
    items, stats = load_items(path)
    if until is not None:
        items = [it for it in items if it.published_at < until]
    scored = score_items(items, path, cache_dir)
    if per_ticker:
        toward = score_tickers(items, path, cache_dir)
        scored = [replace(s, ticker_sentiment=toward.get(s.item.id)) for s in scored]
    run = replay_scored(scored, cfgs, a)
    det = run.detector
    alerts = det.alerts
    lines = [
        f"archive {path}{f' before {until:%Y-%m-%d}' if until else ''}: {stats.read} rows, {len(items)} distinct ids "
        f"in {items[0].published_at:%Y-%m-%d}..{items[-1].published_at:%Y-%m-%d}, {run.stories} unique stories "
        f"({sum(s.sentiment == 'negative' for s in scored)} negative articles, "
        f"{sum(len(v) for k, v in run.negatives.items() if k[0] == 'ticker')} (article, ticker) pairs negative toward "
        f"the ticker{'' if per_ticker else ', the headline for all'}); scales "
        + ", ".join(f"{c.scale} ({c.window_s}s every {c.step_s}s{', anchored' if c.anchored else ''})" for c in cfgs),
        f"alerts: {len(alerts)} in {len(det.incidents.incidents)} incidents; by scope kind and scale: "
        + ", ".join(f"{k}/{s} {n}" for (k, s), n in sorted(Counter((f.scope_kind, f.scale) for f in alerts).items())),
    ]
    ticker = [f for f in alerts if f.scope_kind == "ticker"]
    tdays = {(f.scope, from_epoch(f.window_start).date()) for f in ticker}
    lines.append(f"ticker alerts: {len(ticker)} on {len(tdays)} ticker-days, "
                 f"{sum(1 for f in det.primary if f.scope_kind == 'ticker')} ticker incidents")
    # alerts per ticker-quarter
    per = Counter((f.scope, quarter(f.window_start)) for f in ticker)
    quarters = sorted({q for _, q in per})
    dist = Counter(per.values())
    lines.append(f"alerts per ticker-quarter (ticker alerts, all scales): {len(per)} ticker-quarters with alerts; "
                 + ", ".join(f"{n} alert{'s' if n > 1 else ''}: {c}" for n, c in sorted(dist.items())))
    lines.append("  ticker   " + " ".join(f"{q:>6}" for q in quarters))
    for tk in sorted({t for t, _ in per}):
        lines.append(f"  {tk:<8} " + " ".join(f"{per.get((tk, q), 0) or '.':>6}" for q in quarters))
    # copies of one story
    def one_story(f: Finding, distinct: bool) -> bool:
        ev = top_evidence(run, f, 3, distinct)
        return len(ev) > 0 and len({e.story_id for e in ev}) == 1 and (distinct or len(ev) > 1)

    raw = sum(one_story(f, False) for f in alerts)
    ded = sum(one_story(f, True) for f in alerts)
    lines.append(
        f"alerts whose top 3 negative articles are copies of one story: {raw}/{len(alerts)} "
        f"({raw / max(len(alerts), 1):.1%}) by p_negative alone; {ded}/{len(alerts)} "
        f"({ded / max(len(alerts), 1):.1%}) with the evidence the alert stores (most negative distinct stories)"
    )
    lines.append(f"the {strongest} strongest alerts (z, then negative stories), with their top distinct stories:")
    for f in sorted(alerts, key=lambda f: (-f.decision.z, -f.decision.negative, f.window_start))[:strongest]:
        d = f.decision
        ws = from_epoch(f.window_start)
        lines.append(f"  {f.scope_kind}/{f.scope} [{f.scale}] {ws:%Y-%m-%d %H:%M} +{(f.window_end - f.window_start) // 60}min: "
                     f"{d.negative} negative stories of {d.articles} ({f.negative_articles} negative articles), "
                     f"expected {d.baseline:.1f}, z={d.z:.1f}")
        for e in top_evidence(run, f, 3, True):
            lines.append(f"      - {e.title[:140]}")
    return "\n".join(lines)
