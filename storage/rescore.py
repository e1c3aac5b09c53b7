"""``finsent rescore --since T [--model DIR]``: re-classify stored articles.

Articles with ``published_at >= T`` (floored to the minute) are read in
(published_at, id) order, ``batch_size`` at a time, scored by the engine, and
written back with the engine's ``model_version``.  Each batch is one
transaction that also moves the batch's counts in ``sentiment_minute`` and its
hourly / daily roll-ups from the old labels to the new ones (the same
contribution SQL as the writer, with sign -1 for the old row and +1 for the new
one; rows left with zero articles are deleted).  So after every committed batch
the buckets equal what the articles imply -- no window where trends are
half-rebuilt -- and the pipeline can keep writing meanwhile (its increments
commute with ours).  An interrupted rescore is resumed by running it again:
articles already carrying the new model_version (and, when the engine scores it, their per-ticker
sentiment) are skipped (``only_stale``): so, after migration 0007, ``finsent rescore --since T`` with the
same checkpoint gives the rows stored before it their per-ticker sentiment.

Runs with the owner/admin connection (it updates ``articles``); one rescore per
schema at a time (advisory lock).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg2
import psycopg2.extras

from model.ticker_sentiment import checked, predict_per_ticker, sentiment_toward, takes_entities
from storage import buckets
from storage.db import (
    LazyConnection,
    PgConnection,
    PgCursor,
    RetryPolicy,
    check_schema,
    connect,
    first_line,
    redact,
    transaction,
)
from stream.base.errors import UserError
from stream.base.labels import TOPICS
from stream.messages.raw_message import link_tickers
from stream.messages.text import model_input

if TYPE_CHECKING:
    from model.engine import Engine
    from stream.linking import Linker

log = logging.getLogger("finsent.storage.rescore")

_NEW_COLS = ("id", "published_at", "topic", "topic_score", "sentiment", "p_negative", "p_neutral",
             "p_positive", "sentiment_score", "model_version", "tickers", "ticker_links", "ticker_sentiment")
_TEMPLATE = ("(%s, %s::timestamptz, %s, %s::float8, %s, %s::float8, %s::float8, %s::float8, %s::float8, %s, "
             "%s::text[], %s::jsonb, %s::jsonb)")  # tickers / ticker_links NULL = keep (no --relink)


def _update_sql() -> str:
    contrib = f"{buckets.contributions('old', '-1')}\n    UNION ALL{buckets.contributions('upd', '1')}"
    upserts, names = buckets.upsert_ctes("contrib")
    zero = "\n    UNION ALL ".join(
        f"SELECT tbl, bucket, scope_kind, scope FROM {n} WHERE articles = 0" for n in names
    )
    return f"""
WITH new ({", ".join(_NEW_COLS)}) AS (VALUES %s),
old AS (
    SELECT a.published_at, a.tickers, a.topic, a.sentiment, a.sentiment_score, a.ticker_sentiment, a.story_first
    FROM articles AS a JOIN new AS n ON a.id = n.id AND a.published_at = n.published_at),
upd AS (
    UPDATE articles AS a SET
        topic = n.topic, topic_score = n.topic_score, sentiment = n.sentiment,
        p_negative = n.p_negative, p_neutral = n.p_neutral, p_positive = n.p_positive,
        sentiment_score = n.sentiment_score, model_version = n.model_version,
        tickers = coalesce(n.tickers, a.tickers), ticker_links = coalesce(n.ticker_links, a.ticker_links),
        ticker_sentiment = n.ticker_sentiment
    FROM new AS n WHERE a.id = n.id AND a.published_at = n.published_at
    RETURNING a.published_at, a.tickers, a.topic, a.sentiment, a.sentiment_score, a.ticker_sentiment,
              a.story_first),
contrib AS ({contrib}),
{upserts}
{zero}"""


UPDATE_SQL = _update_sql()
# what only_stale rescoring picks: rows of another model, and rows with tickers but no per-ticker sentiment
# (stored before it) when the engine scores it
_STALE = ("(NOT %(stale)s OR model_version <> %(v)s"
          " OR (%(entities)s AND ticker_sentiment IS NULL AND cardinality(tickers) > 0))")
RETRY = RetryPolicy(attempts=8, initial_s=0.5, max_s=10.0)  # one batch's transaction


def _default_text_fn() -> Callable[[str, str | None], str]:
    return model_input  # the one input contract (same text as the worker and classify)


def rescore(
    dsn: str,
    schema: str,
    engine: Engine,
    since: datetime,
    *,
    until: datetime | None = None,
    batch_size: int = 256,
    only_stale: bool = True,
    text_fn: Callable[[str, str | None], str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    relink: Linker | None = None,
) -> dict[str, Any]:
    """Re-score articles since ``since`` with ``engine``; returns counts.

    ``engine``: has ``model_version`` and ``predict(texts, entities=None) -> [Prediction]``
    (fields topic, topic_score, sentiment, p_negative, p_neutral, p_positive,
    sentiment_score, entities): the sentiment toward each ticker of each article is scored
    again too (``articles.ticker_sentiment``, moving the ticker buckets with it); an engine whose
    ``predict`` takes no ``entities`` leaves the rows without it (the headline's counts).
    Returns {"model_version", "since", "scanned", "updated", "changed_sentiment", "changed_topic",
    "changed_ticker_sentiment" ((article, ticker) pairs whose sentiment toward the ticker changed),
    "batches", "seconds"}.
    ``relink``: a ``stream.linking.Linker``: also link the tickers again (after the alias table,
    the user's aliases or the watchlist changed), moving the ticker buckets with them; the
    message's own tickers (links with rule ``given``) are kept.  Adds "changed_tickers".
    """
    check_schema(schema)
    job = _Job(engine, text_fn or _default_text_fn(), only_stale, relink, batch_size, until)
    started = time.monotonic()
    db = LazyConnection(lambda: connect(dsn, schema, application_name="finsent-rescore"))
    try:
        conn = db.get()
    except psycopg2.Error as exc:
        raise UserError(f"cannot connect to {redact(dsn)}: {first_line(exc)}") from None
    stats = job.stats
    try:
        with conn.cursor() as cur:
            job.since = _start(cur, schema, since, job)
            conn.commit()
            last = (job.since, "")
            while True:
                chunk = job.next_chunk(cur, last)
                conn.commit()
                if not chunk:
                    break
                last = (chunk[-1][1], chunk[-1][0])
                values = job.score(chunk)
                _apply(db, values)
                conn = db.get()  # a new one if the batch was retried after a lost connection
                cur = conn.cursor()
                stats["scanned"] += len(chunk)
                stats["updated"] += len(values)
                stats["batches"] += 1
                if progress:
                    progress(stats["scanned"], stats["todo"])
    finally:
        db.close()  # also releases the advisory lock
    stats["seconds"] = time.monotonic() - started
    log.info("rescored %d articles of schema %s with model %s (%d sentiments and %d topics changed) in %.1fs",
             stats["updated"], schema, job.version, stats["changed_sentiment"], stats["changed_topic"],
             stats["seconds"])
    return stats


class _Job:
    """One rescore: what it reads (:meth:`next_chunk`), how it scores a chunk (:meth:`score`), its counts."""

    def __init__(self, engine: Engine, text_fn: Callable[[str, str | None], str], only_stale: bool, relink: Linker | None,
                 batch_size: int, until: datetime | None) -> None:
        self.engine, self.text_fn, self.only_stale, self.relink = engine, text_fn, only_stale, relink
        self.batch_size, self.until = batch_size, until
        self.version = str(engine.model_version)
        self.entities = takes_entities(engine)
        self.since: datetime | None = None
        self.stats: dict[str, Any] = {"model_version": self.version, "scanned": 0, "updated": 0, "changed_sentiment": 0,
                            "changed_topic": 0, "batches": 0, "changed_tickers": 0, "changed_ticker_sentiment": 0}

    def params(self, **more: Any) -> dict[str, Any]:
        return {"since": self.since, "until": self.until, "stale": self.only_stale, "v": self.version,
                "entities": self.entities, **more}

    @property
    def upper(self) -> str:
        return "AND published_at < %(until)s" if self.until is not None else ""

    def next_chunk(self, cur: PgCursor, last: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        cur.execute(
            f"""SELECT id, published_at, title, extra->>'summary', topic, sentiment, tickers, ticker_links,
                       ticker_sentiment, extra->>'given_topic', extra->'ciks'
                FROM articles
                WHERE published_at >= %(since)s {self.upper} AND (published_at, id) > (%(ts)s, %(id)s)
                  AND {_STALE}
                ORDER BY published_at, id LIMIT %(n)s""",
            self.params(ts=last[0], id=last[1], n=self.batch_size),
        )
        rows: list[tuple[Any, ...]] = cur.fetchall()
        return rows

    def score(self, chunk: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The new values of a chunk's rows (relinked first, with relink: the sentiment toward each ticker
        needs the final links); counts what changed."""
        relink, stats = self.relink, self.stats
        linked = [_relink(relink, r[2], r[3], r[7], r[1], r[10]) if relink is not None else (None, None)
                  for r in chunk]
        final = [(list(r[6] or []) if tk is None else tk, list(r[7] or []) if lk is None else lk)
                 for r, (tk, lk) in zip(chunk, linked)]
        preds, per_ticker = predict_per_ticker(self.engine, [self.text_fn(r[2], r[3]) for r in chunk],
                                               [lk for _, lk in final], [tk for tk, _ in final])
        if len(preds) != len(chunk):
            raise RuntimeError(f"engine returned {len(preds)} predictions for {len(chunk)} texts")
        values = []
        for r, p, (tickers, links), (new_tickers, _), pt in zip(chunk, preds, linked, final, per_ticker):
            score = min(1.0, max(-1.0, float(p.sentiment_score)))
            if relink is not None:
                stats["changed_tickers"] += sorted(tickers or []) != sorted(r[6] or [])
            entries = None if pt is None else checked(pt, new_tickers)
            # a topic the source gave (an EDGAR filing's 8-K items) stays: the model does not override it
            topic, topic_score = (r[9], 1.0) if r[9] in TOPICS else (p.topic, float(p.topic_score))
            values.append((r[0], r[1], topic, topic_score, p.sentiment, float(p.p_negative),
                           float(p.p_neutral), float(p.p_positive), score, self.version, tickers,
                           None if links is None else psycopg2.extras.Json(links),
                           None if entries is None else psycopg2.extras.Json(entries)))
            stats["changed_sentiment"] += p.sentiment != r[5]
            stats["changed_topic"] += topic != r[4]
            stats["changed_ticker_sentiment"] += sum(
                sentiment_toward(entries, t, p.sentiment)[0] != sentiment_toward(r[8], t, r[5])[0]
                for t in set(new_tickers) & set(r[6] or []))
        return values


def _start(cur: PgCursor, schema: str, since: datetime, job: _Job) -> datetime:
    """Check the schema, take the rescore lock, and refuse ranges whose buckets cannot be rebuilt (pruned
    months: the buckets count more articles than are stored); the start minute."""
    cur.execute("SELECT to_regclass('articles')")
    if cur.fetchone()[0] is None:
        raise UserError(f"schema '{schema}' has no finsent tables: run 'finsent db upgrade --schema {schema}'")
    cur.execute("SELECT pg_try_advisory_lock(hashtext('finsent rescore ' || current_schema()))")
    if not cur.fetchone()[0]:
        raise UserError(f"another rescore of schema '{schema}' is running")
    cur.execute("SELECT date_trunc('minute', %s::timestamptz, 'UTC')", (since,))
    since = job.since = cur.fetchone()[0]
    job.stats["since"] = since
    bucket_upper = "AND bucket < date_trunc('minute', %(until)s::timestamptz, 'UTC')" if job.until is not None else ""
    cur.execute(
        f"""SELECT (SELECT coalesce(sum(articles), 0) FROM sentiment_minute
                     WHERE scope_kind = 'all' AND bucket >= %(since)s {bucket_upper}),
                   (SELECT count(*) FROM articles WHERE published_at >= %(since)s {job.upper}),
                   (SELECT count(*) FROM articles WHERE published_at >= %(since)s {job.upper}
                           AND {_STALE})""",
        job.params(),
    )
    counted, stored, todo = cur.fetchone()
    if counted > stored:
        cur.connection.commit()
        raise UserError(
            f"the trend buckets since {since:%Y-%m-%d %H:%M} count {counted} articles but only {stored} "
            "are stored (older partitions pruned?): choose a later --since"
        )
    job.stats["todo"] = todo
    return since


def _relink(linker: Linker, title: str, summary: str | None, old_links: Any,
            published_at: Any = None, ciks: Any = None) -> tuple[list[str], list[dict[str, Any]]]:
    """The worker's linking of a stored article's text (stream.messages.raw_message.link_tickers) as of its publication
    time, keeping its given tickers and its companies named by CIK."""
    given = [lk.get("ticker") for lk in (old_links or []) if isinstance(lk, dict) and lk.get("rule") == "given"]
    ciks = [str(c) for c in ciks if isinstance(c, (str, int))] if isinstance(ciks, list) else []
    tickers, links = link_tickers(linker, [t for t in given if t], f"{title} {summary or ''}", at=published_at,
                                  ciks=ciks)
    return list(tickers), list(links)


def _apply(db: LazyConnection, values: Sequence[tuple[Any, ...]]) -> None:
    """One batch: update the articles and move their bucket counts; retried on transient errors."""

    def body(conn: PgConnection) -> None:
        with conn.cursor() as cur:
            zero = psycopg2.extras.execute_values(cur, UPDATE_SQL, values, template=_TEMPLATE,
                                                  page_size=len(values), fetch=True)
            by_table: dict[str, list[tuple[Any, ...]]] = {}
            for tbl, bucket, kind, scope in zero:
                by_table.setdefault(tbl, []).append((bucket, kind, scope))
            for table, keys in sorted(by_table.items()):
                psycopg2.extras.execute_values(
                    cur,
                    f"""DELETE FROM {table} AS t USING (VALUES %s) AS k(bucket, scope_kind, scope)
                        WHERE t.bucket = k.bucket::timestamptz AND t.scope_kind = k.scope_kind
                          AND t.scope = k.scope AND t.articles = 0""",
                    keys, page_size=len(keys),
                )

    def on_retry(exc: BaseException, attempt: int, delay: float) -> None:
        log.warning("rescore batch: %s; retrying in %.1fs", first_line(exc), delay)

    try:
        transaction(db, body, policy=RETRY, on_retry=on_retry)
    except psycopg2.Error as exc:
        raise UserError(f"rescore failed: {first_line(exc)}") from None
