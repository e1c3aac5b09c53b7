"""The pipeline's batch writer: scored articles and their trend buckets, effectively once.

``Writer.write_batch(rows)`` runs ONE transaction and ONE statement per batch (the rows travel as one
JSON parameter of a statement prepared once per connection, so the batch is neither planned nor
quoted value by value):

1. the batch's ids go into ``article_ids`` (``ON CONFLICT DO NOTHING RETURNING
   id``): only ids never stored before come back -- this is the exact
   idempotency key, concurrent writers included (a second writer of the same id
   waits for the first to commit, then skips it);
2. those rows, and only those, go into ``articles`` (monthly partitions);
3. their contributions increment ``sentiment_minute`` and its hourly and daily
   roll-ups (scope 'all', each ticker, the topic).

Replaying the same rows, or rows repeated within a batch, changes no count.  On
a lost connection (PostgreSQL restart, network) or a deadlock the whole
transaction is retried on a fresh connection with exponential backoff until it
succeeds or the optional deadline passes; every retry is logged with the URL
redacted.  Monthly partitions are created on demand (through the
``ensure_article_partition`` function, in its own short transaction) and
remembered.

Caveat: when the connection drops during COMMIT the outcome is unknown to the
client; the retry then finds the ids already stored and reports them as
skipped, so ``inserted`` can under-report, but no count is ever doubled.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

import orjson
import psycopg2
from psycopg2.extras import Json

from model.ticker_sentiment import checked
from storage import buckets
from storage.db import (
    WRITER_ROLE,
    LazyConnection,
    PgConnection,
    RetryPolicy,
    check_schema,
    connect,
    first_line,
    is_connection_error,
    is_fatal_connect_error,
    redact,
    transaction,
)
from stream.base.errors import UserError
from stream.base.labels import SENTIMENTS

log = logging.getLogger("finsent.storage.writer")

COLUMNS = (
    "id", "published_at", "source", "url", "title", "tickers", "topic", "topic_score", "sentiment",
    "p_negative", "p_neutral", "p_positive", "sentiment_score", "model_version", "extra",
    "story_id", "story_first", "ticker_links", "ticker_sentiment",
)
# the batch travels as ONE JSON array of row objects (one parameter, one round trip); its columns' types:
# (extra, ticker_links and ticker_sentiment travel as JSON text made by _dumps, cast to jsonb in SQL)
_RECORD_TYPES = (
    "text", "timestamptz", "text", "text", "text", "text[]", "text", "float8", "text",
    "float8", "float8", "float8", "float8", "text", "text", "text", "boolean", "text", "text",
)
_JSONB_COLUMNS = ("extra", "ticker_links", "ticker_sentiment")
_PG_FLOAT = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}  # what float8 reads; JSON has no such numbers


@dataclass
class ArticleRow:
    """One scored article, as stored in ``articles``."""

    id: str
    published_at: datetime  # timezone-aware
    source: str | None
    url: str | None
    title: str
    tickers: list[str]
    topic: str | None
    topic_score: float | None
    sentiment: str  # negative | neutral | positive
    p_negative: float
    p_neutral: float
    p_positive: float
    sentiment_score: float  # p_positive - p_negative, in [-1, 1]
    model_version: str
    extra: dict[str, Any] = field(default_factory=dict)
    story_id: str | None = None  # id of the first article of its story (stream.messages.novelty); None = its own
    story_first: bool = True  # first-seen article of its story: counted in the buckets' stories
    ticker_links: list[Any] = field(default_factory=list)  # stream.linking: why each ticker is there (0004)
    # the sentiment toward each ticker (0007): {ticker: {sentiment, p_negative, p_neutral, p_positive,
    # sentiment_score, source}}; None: none (the buckets count the headline's for every ticker)
    ticker_sentiment: dict[str, dict[str, Any]] | None = None


@dataclass
class WriteResult:
    inserted: list[ArticleRow]  # rows really stored by this call, in input order
    skipped: int  # rows whose id was already stored (or repeated in the batch)
    attempts: int = 1  # transactions tried (1 = no retry)
    seconds: float = 0.0  # wall time of the call, retries included


class WriterUnavailable(UserError):
    """The database stayed unreachable past the writer's retry deadline."""


def _json_default(o: object) -> str:
    if isinstance(o, datetime):
        return o.isoformat()
    return str(o)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=_json_default)


def _clean(row: ArticleRow) -> tuple[Any, ...]:
    """Validate one row and return its values in COLUMNS order."""
    if not row.id or not isinstance(row.id, str):
        raise ValueError(f"article without id: {row!r}")
    ts = row.published_at
    if not isinstance(ts, datetime) or ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"article {row.id}: published_at must be a timezone-aware datetime, got {ts!r}")
    if row.sentiment not in SENTIMENTS:
        raise ValueError(f"article {row.id}: sentiment must be one of {SENTIMENTS}, got {row.sentiment!r}")
    score = float(row.sentiment_score)
    if not math.isfinite(score):
        raise ValueError(f"article {row.id}: sentiment_score is not finite")
    score = min(1.0, max(-1.0, score))  # fp16 softmax may overshoot by an ulp
    tickers = []
    for t in row.tickers or ():
        if t and t not in tickers:
            tickers.append(str(t))
    return (
        row.id, ts, row.source, row.url, row.title or "", tickers, row.topic or None,
        None if row.topic_score is None else float(row.topic_score), row.sentiment,
        float(row.p_negative), float(row.p_neutral), float(row.p_positive), score,
        row.model_version, Json(row.extra or {}, dumps=_dumps),
        row.story_id or row.id, bool(row.story_first),
        Json(list(row.ticker_links or ()), dumps=_dumps),
        None if row.ticker_sentiment is None else Json(_ticker_sentiment(row.id, row.ticker_sentiment, tickers),
                                                       dumps=_dumps),
    )


def _ticker_sentiment(article: str, entries: dict[str, Any], tickers: list[str]) -> dict[str, Any]:
    """The row's per-ticker sentiment, checked (:func:`model.ticker_sentiment.checked`)."""
    try:
        return checked(entries, tickers)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"article {article}: {exc}") from None


def _payload(values: Sequence[tuple[Any, ...]]) -> str:
    """The batch (``_clean`` tuples) as the JSON array WRITE_SQL reads: orjson, or, for what orjson
    refuses (integers past 64 bits, a str subclass), ``json`` as before (its refusals stay record errors)."""
    def value(v: Any) -> Any:
        if isinstance(v, Json):
            return _dumps(v.adapted)  # the JSON columns' text, made as before (NaN etc. still refused by jsonb)
        if isinstance(v, float) and not math.isfinite(v):
            return _PG_FLOAT[repr(v)]
        if (isinstance(v, str) and "\x00" in v) or (isinstance(v, list) and any("\x00" in t for t in v)):
            raise ValueError("A string literal cannot contain NUL (0x00) characters.")  # PostgreSQL text cannot
        return v

    objs = [{c: value(v) for c, v in zip(COLUMNS, row)} for row in values]
    try:
        return orjson.dumps(objs).decode("utf-8")
    except TypeError:
        return _dumps(objs)


# ------------------------------------------------------------ the commit of a batch
# One transaction, one statement: WITH data (the batch), then one CTE a step, in this order.
def _register_ids() -> str:
    """1. The batch's ids go into ``article_ids``; only ids never stored before come back."""
    return """
    INSERT INTO article_ids (id, published_at)
    SELECT id, published_at FROM data ORDER BY id
    ON CONFLICT (id) DO NOTHING
    RETURNING id"""


def _insert_articles() -> str:
    """2. Those rows, and only those, go into ``articles``."""
    return f"""
    INSERT INTO articles ({", ".join(COLUMNS)})
    SELECT {", ".join("d." + c for c in COLUMNS)} FROM data AS d JOIN new_ids AS n ON n.id = d.id
    RETURNING published_at, tickers, topic, sentiment, sentiment_score, ticker_sentiment, story_first"""


def _contributions() -> str:
    """3. What each new article adds to its scopes (all, each ticker, the topic): :mod:`storage.buckets`."""
    return buckets.contributions("ins")


# 4. ``buckets.upsert_ctes("contrib")`` adds them to ``sentiment_minute`` and its hour and day roll-ups.
COMMIT_STEPS = (("new_ids", _register_ids), ("ins", _insert_articles), ("contrib", _contributions))


def _write_sql() -> str:
    upserts, _names = buckets.upsert_ctes("contrib")
    steps = ",\n".join(f"{name} AS ({step()})" for name, step in COMMIT_STEPS)
    record = ", ".join(f"{c} {t}" for c, t in zip(COLUMNS, _RECORD_TYPES))
    select = ", ".join(f"{c}::jsonb AS {c}" if c in _JSONB_COLUMNS else c for c in COLUMNS)
    return f"""
WITH data AS (SELECT {select} FROM json_to_recordset(%s::json) AS x({record})),
{steps},
{upserts}
SELECT id FROM new_ids"""


WRITE_SQL = _write_sql()
# prepared once per connection (Writer._connect): planning the statement cost ~14 ms a batch, more than running it
PREPARE_SQL = "PREPARE finsent_write_batch (text) AS " + WRITE_SQL.replace("%s", "$1")
EXECUTE_SQL = "EXECUTE finsent_write_batch (%s)"


def month_start(ts: datetime) -> datetime:
    u = ts.astimezone(UTC)
    return datetime(u.year, u.month, 1, tzinfo=UTC)


class Writer:
    """Writes scored article batches to one schema as ``finsent_writer``.

    ``dsn``: the pipeline's database URL (an owner/admin login that may
    ``SET ROLE finsent_writer``, or a ``finsent_writer`` login).
    ``retry_deadline_s``: give up (``WriterUnavailable``) when the database stays
    unreachable this long; ``None`` keeps trying.
    """

    def __init__(
        self,
        dsn: str,
        schema: str = "public",
        *,
        role: str | None = WRITER_ROLE,
        retry_deadline_s: float | None = None,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 10.0,
        connect_timeout: int = 5,
        application_name: str = "finsent-writer",
    ) -> None:
        self.dsn = dsn
        self.schema = check_schema(schema)
        self.role = role
        self.retry_deadline_s = retry_deadline_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.connect_timeout = connect_timeout
        self.application_name = application_name
        self.retry = RetryPolicy(deadline_s=retry_deadline_s, initial_s=retry_initial_s, max_s=retry_max_s)
        self._db = LazyConnection(self._connect)
        self._months: set[datetime] = set()
        self.retries = 0  # total retries over the writer's life (for metrics)

    # ------------------------------------------------------------ connection
    def _connect(self) -> PgConnection:
        try:
            conn = connect(
                self.dsn, self.schema, role=self.role, application_name=self.application_name,
                connect_timeout=self.connect_timeout,
            )
        except psycopg2.Error as exc:
            if is_fatal_connect_error(exc) or not is_connection_error(exc):
                raise UserError(f"writer cannot use {redact(self.dsn)} (schema {self.schema}): {first_line(exc)}") from None
            raise
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT to_regclass('article_ids'), to_regclass('articles')")
                if None in cur.fetchone():
                    raise UserError(
                        f"schema '{self.schema}' has no finsent tables: run 'finsent db upgrade --schema {self.schema}'"
                    )
                cur.execute(PREPARE_SQL)  # lives as long as the connection (a rollback keeps it)
            conn.rollback()
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> PgConnection:
        return self._db.get()

    def close(self) -> None:
        self._db.drop()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ partitions
    def _ensure_partitions(self, conn: PgConnection, months: Iterable[datetime]) -> None:
        missing = sorted(set(months) - self._months)
        if not missing:
            return
        old = conn.autocommit
        conn.autocommit = True  # short transactions of their own: never hold the parent's lock
        try:
            with conn.cursor() as cur:
                for m in missing:
                    cur.execute("SELECT ensure_article_partition(%s)", (m,))
                    self._months.add(m)
        finally:
            conn.autocommit = old

    # ------------------------------------------------------------ writing
    def write_batch(self, rows: Sequence[ArticleRow]) -> WriteResult:
        """Store a batch in one transaction; see the module docstring."""
        started = time.monotonic()
        rows = list(rows)
        unique: dict[str, ArticleRow] = {}
        for r in rows:
            unique.setdefault(r.id, r)
        if not unique:
            return WriteResult([], len(rows), 0, 0.0)
        values = [_clean(r) for r in unique.values()]
        payload = _payload(values)
        months = {month_start(r.published_at) for r in unique.values()}

        refreshed = False

        def body(conn: PgConnection) -> list[tuple[Any, ...]]:  # the batch's monthly partitions exist, then COMMIT_STEPS as one statement
            self._ensure_partitions(conn, months)
            with conn.cursor() as cur:
                cur.execute(EXECUTE_SQL, (payload,))
                result: list[tuple[Any, ...]] = cur.fetchall()
                return result

        def partition_dropped(exc: BaseException) -> bool:
            """A partition we remembered was dropped (prune) meanwhile: forget them, retry at once (once)."""
            nonlocal refreshed
            if refreshed or getattr(exc, "pgcode", None) != "23514" or "partition" not in str(exc):
                return False
            self._months.clear()
            refreshed = True
            return True

        def on_retry(exc: BaseException, attempt: int, delay: float) -> None:
            self.retries += 1
            log.warning(
                "database %s: %s; retrying batch of %d in %.1fs (attempt %d)",
                redact(self.dsn), first_line(exc), len(values), delay, attempt + 1,
            )

        def give_up(exc: BaseException, attempts: int, elapsed: float) -> NoReturn:
            self.retries += 1
            raise WriterUnavailable(
                f"database {redact(self.dsn)} unavailable for {elapsed:.1f}s "
                f"({attempts} attempts): {first_line(exc)}"
            ) from None

        done = transaction(self._db, body, policy=self.retry, on_retry=on_retry, give_up=give_up,
                           retry_now=partition_dropped)
        got, attempts = done.value, done.attempts
        new = {r[0] for r in got}
        inserted = [r for r in unique.values() if r.id in new]
        return WriteResult(inserted, len(rows) - len(inserted), attempts, time.monotonic() - started)
