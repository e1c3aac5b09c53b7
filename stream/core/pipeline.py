"""The worker's batch step, without Faust: validate -> dedupe -> score -> store -> detect.

:class:`BatchProcessor.process` is synchronous and runs in the worker's single
executor thread (the model and the database calls block); the Faust agent in
``stream.app`` only moves records in and acknowledgements out.  Keeping the
step free of Kafka makes it unit-testable with fakes for the engine and the
writer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

from model.ticker_sentiment import predict_per_ticker
from stream.messages.raw_message import (
    InvalidRecord,
    NewsItem,
    TickerExtractor,
    format_time,
    given_topic,
    json_bytes,
    parse_record,
)

if TYPE_CHECKING:
    from model.prediction import Prediction
    from storage.writer import ArticleRow
    from stream.linking import Linker

log = logging.getLogger("finsent.pipeline")

REPLAY_HEADER = "finsent-replay"  # value b"quiet" or b"notify"; absent for live records


@dataclass(frozen=True)
class RawRecord:
    value: bytes | None
    key: bytes | None = None
    topic: str = ""
    partition: int = 0
    offset: int = -1
    timestamp_ms: int | None = None
    headers: tuple[tuple[str, bytes], ...] = ()

    def header(self, name: str) -> bytes | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


@dataclass(frozen=True)
class DeadLetter:
    """An invalid record: forwarded to news.deadletter with its original bytes."""

    record: RawRecord
    reason: str
    detail: str

    def headers(self) -> list[tuple[str, bytes]]:
        r = self.record
        return [
            ("finsent-reason", self.reason.encode()),
            ("finsent-detail", self.detail[:1000].encode("utf-8", "replace")),
            ("finsent-source", f"{r.topic}/{r.partition}/{r.offset}".encode()),
            ("finsent-dead-at", format_time(datetime.now().astimezone()).encode()),
        ]


class Engine(Protocol):
    """``model.engine``'s engines; ``predict`` also takes ``entities=`` (one query list per text) there, and
    a stand-in without it (``model.null.NullEngine``) stores no per-ticker sentiment."""

    model_version: str

    def predict(self, texts: Sequence[str]) -> list[Any]: ...


class Writer(Protocol):
    def write_batch(self, rows: list[Any]) -> Any: ...


class AlertObserver(Protocol):
    """What the batch loop uses of ``alerts.service.AlertService``: advance the watermark, get the new alerts."""

    def observe(self, max_event_time: Mapping[Any, datetime | None], replay: bool = False,
                notify: bool = True) -> Sequence[Any] | None: ...


class StoryMark(Protocol):
    """One article's story (``stream.messages.novelty.StoryMark``)."""

    @property
    def story_id(self) -> str: ...

    @property
    def first(self) -> bool: ...


class StoryMarker(Protocol):
    """What the batch loop uses of ``stream.messages.novelty.StoryIndex``: (id, event time, text) -> story marks."""

    def assign_batch(self, rows: Sequence[tuple[str, float, str]]) -> Sequence[StoryMark]: ...


class RecentIds:
    """Bounded memory of article ids already handled by this worker (LRU)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._ids

    def add(self, item_id: str) -> None:
        self._ids[item_id] = None
        self._ids.move_to_end(item_id)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)


@dataclass
class BatchResult:
    received: int = 0
    items: list[NewsItem] = field(default_factory=list)
    inserted: list[Any] = field(default_factory=list)  # storage.writer.ArticleRow
    scored: list[Any] = field(default_factory=list)  # ArticleRow for every valid item
    dead: list[DeadLetter] = field(default_factory=list)
    skipped: int = 0  # already stored (database said so)
    infer_s: float = 0.0  # the model (tokenisation excluded when the engine reports it)
    db_s: float = 0.0
    alerts_s: float = 0.0
    # per-stage seconds (see STAGES); the agent adds consume, produce and ack
    parse_s: float = 0.0  # decode + validate (linking excluded)
    link_s: float = 0.0
    tokenize_s: float = 0.0
    build_s: float = 0.0  # prediction -> ArticleRow
    produce_s: float = 0.0
    ack_s: float = 0.0
    consume_s: float = 0.0  # agent: waiting for / assembling the batch
    max_event_time: datetime | None = None
    source_times: dict[str, datetime] = field(default_factory=dict)  # per topic-partition
    replay: bool = False
    notify: bool = True
    new_alerts: list[Any] = field(default_factory=list)
    # between prepare() and store(): the partitions with no record yet, each item's source and record
    unseen_sources: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # item id -> "topic:partition"
    origin: dict[str, RawRecord] = field(default_factory=dict)  # item id -> its record (for dead letters)


# the per-stage breakdown the worker's metrics and bench/pipeline.py report (BatchResult.<stage>_s)
STAGES = ("consume", "parse", "link", "tokenize", "infer", "build", "db", "alerts", "produce", "ack")


class _TimedExtractor:
    """Wraps a ticker extractor to add up the time spent linking."""

    def __init__(self, inner: Linker) -> None:
        self.inner = inner
        self.seconds = 0.0

    def extract(self, text: str) -> list[str]:
        t0 = time.perf_counter()
        try:
            return self.inner.extract(text)
        finally:
            self.seconds += time.perf_counter() - t0

    def link(self, text: str, at: Any = None) -> list[Any]:
        t0 = time.perf_counter()
        try:
            return self.inner.link(text, at)
        finally:
            self.seconds += time.perf_counter() - t0

    def __getattr__(self, name: str) -> Any:  # canonical(), in_watchlist(), ... of the linker
        return getattr(self.inner, name)


@dataclass
class IsolatedWrite:
    inserted: list[Any] = field(default_factory=list)
    skipped: int = 0
    rejected: list[tuple[Any, str]] = field(default_factory=list)  # (row, first line of the error)


def write_isolating(writer: Writer, rows: Sequence[Any],
                    is_record_error: Callable[[BaseException], bool] | None = None) -> IsolatedWrite:
    """``writer.write_batch(rows)``; when it fails for a reason tied to rows (bad data, not a lost
    connection: ``storage.db.is_record_error``), bisect until each refused row stands alone.

    Every other error propagates (a database that stays down is retried inside the writer and
    then stops the worker, which re-reads the unacknowledged batch).  A batch with k bad rows
    of n costs about ``2k log2(n)`` extra transactions; a clean batch costs nothing extra.
    """
    if is_record_error is None:
        from storage.db import is_record_error as default  # here: the pure batch step needs storage only when it writes

        is_record_error = default
    out = IsolatedWrite()
    stack = [list(rows)]
    while stack:
        part = stack.pop()
        if not part:
            continue
        try:
            written = writer.write_batch(part)
        except Exception as exc:  # classified just below: re-raised unless a record error
            if not is_record_error(exc):
                raise
            if len(part) == 1:
                msg = str(exc).strip().splitlines()
                out.rejected.append((part[0], f"{type(exc).__name__}: {msg[0] if msg else ''}"[:500]))
            else:
                mid = len(part) // 2
                stack += [part[mid:], part[:mid]]  # left half first: input order is kept
            continue
        out.inserted += list(written.inserted)
        out.skipped += int(written.skipped)
    return out


def article_row(item: NewsItem, pred: Prediction, model_version: str,
                ticker_sentiment: dict[str, dict[str, Any]] | None = None) -> ArticleRow:
    """The stored form of a scored item; ``ticker_sentiment``: the sentiment toward each of its tickers
    (:func:`model.ticker_sentiment.predict_per_ticker`)."""
    from storage.writer import ArticleRow  # here: the pure batch step needs storage only when it writes

    given = given_topic(item.extra)  # a source that knows the topic (EDGAR's 8-K items) beats the model
    return ArticleRow(
        id=item.id, published_at=item.published_at, source=item.source, url=item.url,
        title=item.title, tickers=list(item.tickers),
        topic=given or pred.topic, topic_score=1.0 if given else float(pred.topic_score),
        sentiment=pred.sentiment, p_negative=float(pred.p_negative), p_neutral=float(pred.p_neutral),
        p_positive=float(pred.p_positive), sentiment_score=float(pred.sentiment_score),
        model_version=model_version,
        # the summary is kept with the unknown fields so that a rescore reads the same text
        extra={**item.extra, "summary": item.summary} if item.summary else item.extra,
        ticker_links=list(item.ticker_links), ticker_sentiment=ticker_sentiment,
    )


def scored_message(row: ArticleRow) -> bytes:
    """The news.scored JSON form of a stored row (orjson: compact UTF-8)."""
    msg: dict[str, Any] = {
        "id": row.id, "published_at": format_time(row.published_at), "title": row.title,
        "source": row.source, "url": row.url, "tickers": list(row.tickers), "topic": row.topic,
        "topic_score": round(cast(float, row.topic_score), 6), "sentiment": row.sentiment,  # set by article_row
        "p_negative": round(row.p_negative, 6), "p_neutral": round(row.p_neutral, 6),
        "p_positive": round(row.p_positive, 6), "sentiment_score": round(row.sentiment_score, 6),
        "model_version": row.model_version,
    }
    if row.ticker_sentiment:
        msg["ticker_sentiment"] = {t: {k: round(v, 6) if isinstance(v, float) else v for k, v in e.items()}
                                   for t, e in row.ticker_sentiment.items()}
    return json_bytes(msg)


def mark_stories(index: StoryMarker, rows: Sequence[ArticleRow], texts: Sequence[str]) -> None:
    """Set ``story_id`` / ``story_first`` of each row (stream.messages.novelty), in event-time order."""
    order = sorted(range(len(rows)), key=lambda i: (rows[i].published_at, rows[i].id))
    marks = index.assign_batch([(rows[i].id, rows[i].published_at.timestamp(), texts[i]) for i in order])
    for i, mark in zip(order, marks):
        rows[i].story_id, rows[i].story_first = mark.story_id, mark.first


@dataclass
class Scores:
    """The model's reading of a batch: one prediction and one per-ticker sentiment map (or None) per item."""

    predictions: list[Any]
    per_ticker: list[dict[str, dict[str, Any]] | None]
    model_version: str
    tokenize_s: float = 0.0
    infer_s: float = 0.0  # the model (tokenisation excluded when the engine reports it)


def score_inputs(items: Sequence[NewsItem]) -> tuple[list[str], list[Any], list[Any]]:
    """What :func:`score_items` reads of the items: texts, ticker links, tickers (plain data: it may go to
    another process)."""
    return [it.model_text for it in items], [it.ticker_links for it in items], [it.tickers for it in items]


def score_items(engine: Engine, texts: Sequence[str], links: Sequence[Any], tickers: Sequence[Any]) -> Scores:
    """One engine call: the headlines and the sentiment toward each item's tickers.  A pure function of the
    texts (batch invariance): any process with the same checkpoint gives the same scores."""
    if not texts:
        return Scores([], [], engine.model_version)
    t0 = time.perf_counter()
    preds, per_ticker = predict_per_ticker(engine, texts, links, tickers)
    tokenize_s = float(getattr(engine, "last_tokenize_s", 0.0) or 0.0)
    return Scores(preds, per_ticker, engine.model_version, tokenize_s, time.perf_counter() - t0 - tokenize_s)


class BatchProcessor:
    """One batch: parse every record, score the valid ones, store them in one transaction."""

    def __init__(
        self,
        engine: Engine,
        writer: Writer,
        *,
        extractor: TickerExtractor | None = None,
        alerts: AlertObserver | None = None,  # alerts.service.AlertService
        recent: RecentIds | None = None,
        novelty: StoryMarker | None = None,  # stream.messages.novelty.StoryIndex: story_id / first-seen per article
    ) -> None:
        self.engine = engine
        self.writer = writer
        self.novelty = novelty
        self.extractor = extractor
        self.alerts = alerts
        self.recent = recent if recent is not None else RecentIds()
        self._pending: set[str] = set()  # ids of prepared batches not stored yet (see prepare())
        self._ids_lock = threading.Lock()  # prepare() and store() run on different threads in the worker
        from stream.linking import default_linker

        self._timed_extractor = _TimedExtractor(extractor if extractor is not None else default_linker())

    def process(self, records: Sequence[RawRecord], unseen_sources: Sequence[str] = ()) -> BatchResult:
        """``unseen_sources``: assigned partitions ("topic:partition") with no record yet;
        they hold the alert watermark until their data arrives (or they stay idle).

        ``store(prepare(records, unseen_sources))``: the worker runs the two halves on two threads so
        that batch k's transaction overlaps batch k+1's parsing, linking, tokenisation and scoring."""
        return self.store(self.prepare(records, unseen_sources))

    def prepare(self, records: Sequence[RawRecord], unseen_sources: Sequence[str] = ()) -> BatchResult:
        """Everything before the database: :meth:`admit`, :meth:`score` and :meth:`build`, in this thread.

        Batches must be prepared in arrival order; each prepared batch must then go to :meth:`store`
        (in the same order) before its ids count as stored; the ids of prepared batches not yet stored
        are kept aside, so a repeat in the next batch is still a ``duplicate_id`` dead letter."""
        res = self.admit(records, unseen_sources)
        if res.items:
            try:
                self.build(res, self.score(res))
            except BaseException:
                self.abandon(res)
                raise
        return res

    def admit(self, records: Sequence[RawRecord], unseen_sources: Sequence[str] = ()) -> BatchResult:
        """Decode, validate (linking what the message does not carry) and dedupe: the batch's items, its dead
        letters.  In arrival order; the ids admitted stay pending until :meth:`store` (or :meth:`abandon`)."""
        res = BatchResult(received=len(records), unseen_sources=list(unseen_sources))
        batch_ids: set[str] = set()
        linker = self._timed_extractor
        linker.seconds = 0.0
        t_parse = time.perf_counter()
        for rec in records:
            item = self._parse(rec, res)
            if item is None:
                continue
            if item.id in batch_ids or self._handled(item.id):
                res.dead.append(DeadLetter(rec, "duplicate_id", f"id {item.id} was already processed"))
                continue
            batch_ids.add(item.id)
            res.items.append(item)
            res.sources[item.id] = f"{rec.topic}:{rec.partition}"
            res.origin[item.id] = rec
            mode = rec.header(REPLAY_HEADER)
            if mode is not None:
                res.replay = True
                res.notify = mode == b"notify"
        with self._ids_lock:
            self._pending.update(batch_ids)
        res.link_s = linker.seconds
        res.parse_s = time.perf_counter() - t_parse - res.link_s
        return res

    def _parse(self, rec: RawRecord, res: BatchResult) -> NewsItem | None:
        try:
            # the wrapper forwards every Linker attribute it does not time
            return parse_record(rec.value, extractor=cast("Linker", self._timed_extractor))
        except InvalidRecord as exc:
            res.dead.append(DeadLetter(rec, exc.reason, exc.detail))
        except Exception as exc:  # a validation bug must not make this record a poison pill (logged)
            log.exception("record %s/%s/%s: unexpected validation error", rec.topic, rec.partition, rec.offset)
            res.dead.append(DeadLetter(rec, "parse_failed", f"{type(exc).__name__}: {exc}"[:500]))
        return None

    def score(self, res: BatchResult) -> Scores:
        """The model's reading of the admitted items, with this processor's engine (:func:`score_items`)."""
        return score_items(self.engine, *score_inputs(res.items))

    def build(self, res: BatchResult, scores: Scores) -> BatchResult:
        """The stored rows of the scored items, with their stories marked: in batch order (the story index
        remembers the batches before)."""
        res.tokenize_s, res.infer_s = scores.tokenize_s, scores.infer_s
        t0 = time.perf_counter()
        texts = [it.model_text for it in res.items]
        res.scored = [article_row(it, p, scores.model_version, pt)
                      for it, p, pt in zip(res.items, scores.predictions, scores.per_ticker)]
        if self.novelty is not None:
            mark_stories(self.novelty, res.scored, texts)
        res.build_s += time.perf_counter() - t0
        return res

    def abandon(self, res: BatchResult) -> None:
        """An admitted batch that will not be stored (its scoring failed, the run stops): its ids are free."""
        self._release(res.origin, stored=())

    def _handled(self, item_id: str) -> bool:
        with self._ids_lock:
            return item_id in self._pending or item_id in self.recent

    def _release(self, ids: Iterable[str], stored: Iterable[str]) -> None:
        """Ids of a prepared batch leave the pending set; those ``stored`` join the recent ones."""
        with self._ids_lock:
            for i in stored:
                self.recent.add(i)
            self._pending.difference_update(ids)

    def store(self, res: BatchResult) -> BatchResult:
        """The database half of a prepared batch: one transaction, then alert detection."""
        if res.items:
            try:
                t0 = time.perf_counter()
                # one transaction, retried on connection loss; a row the database or the encoder refuses
                # is isolated by bisection and dead-lettered ("storage_rejected"), the rest is stored
                written = write_isolating(self.writer, res.scored)
                res.db_s = time.perf_counter() - t0
            except BaseException:
                self._release(res.origin, stored=())
                raise
            res.inserted = list(written.inserted)
            res.skipped = int(written.skipped)
            if written.rejected:
                bad = {row.id: detail for row, detail in written.rejected}
                for row_id, detail in bad.items():
                    log.warning("storage rejected article %s: %s", row_id, detail)
                    res.dead.append(DeadLetter(res.origin[row_id], "storage_rejected", detail))
                res.items = [it for it in res.items if it.id not in bad]
                res.scored = [r for r in res.scored if r.id not in bad]
            res.max_event_time = max((it.published_at for it in res.items), default=None)
            for it in res.items:
                src = res.sources[it.id]
                if src not in res.source_times or it.published_at > res.source_times[src]:
                    res.source_times[src] = it.published_at
            self._release(res.origin, stored=[it.id for it in res.items])
        if self.alerts is not None and res.max_event_time is not None:
            t0 = time.perf_counter()
            try:
                sources: dict[str, datetime | None] = dict.fromkeys(res.unseen_sources)
                sources.update(res.source_times)
                res.new_alerts = list(self.alerts.observe(sources, replay=res.replay, notify=res.notify) or [])
            except Exception as exc:  # noqa: BLE001 - the batch is stored; detection catches up next time
                log.warning("alert detection deferred: %s", str(exc).splitlines()[0] if str(exc) else exc)
            res.alerts_s = time.perf_counter() - t0
        return res
