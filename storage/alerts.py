"""The SQL of the alerts: the detector's counts, the watermark, storing alerts, delivering them.

Plain functions over a cursor (the caller owns the connection and the transaction: see
:func:`storage.db.transaction`); the rules that decide live in :mod:`alerts.detector`, the
service and the notifier in :mod:`alerts`.  Times cross this module as epoch seconds (the
detector's unit) unless a name says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import psycopg2

from storage.buckets import toward_ticker
from storage.db import PgCursor, connect, first_line, redact
from stream.base.errors import UserError

NOTIFY_CHANNEL = "finsent_alerts"  # NOTIFY'd (payload: the schema) when new pending alerts commit


# ---------------------------------------------------------------------------- rows
@dataclass(frozen=True)
class Alert:
    """One row of ``alerts``."""

    id: int
    scope_kind: str
    scope: str
    window_start: datetime
    window_end: datetime
    rule: str
    articles: int
    negative: int
    negative_share: float
    mean_score: float | None
    baseline: float
    baseline_std: float
    baseline_windows: int
    z: float
    top_article_ids: list[str]
    title: str
    message: str
    replayed: bool
    watermark: datetime | None
    created_at: datetime
    delivery_status: str
    attempts: int
    next_attempt_at: datetime | None
    delivered_to: list[str]
    last_error: str | None
    delivered_at: datetime | None
    scale: str = "5m"
    incident_id: int | None = None
    stories: int | None = None
    negative_stories: int | None = None
    explanation: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Alert:
        values: dict[str, Any] = {f.name: row.get(f.name) for f in fields(cls)}
        return cls(**values)

    @property
    def key(self) -> str:
        """Stable identity of the alert (also in its message, for receivers that de-duplicate)."""
        return alert_key(self.scope_kind, self.scope, self.window_start, self.rule, self.scale)


def alert_key(scope_kind: str, scope: str, window_start: datetime, rule: str, scale: str = "5m") -> str:
    key = f"{scope_kind}/{scope}/{window_start.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}/{rule}"
    return key if scale == "5m" else f"{key}/{scale}"


ALERT_COLUMNS = ", ".join(f.name for f in fields(Alert))


@dataclass(frozen=True)
class Headline:
    """One top article of an alert.  ``p_negative`` / ``sentiment`` / ``sentiment_score``: toward the
    alert's scope (for a ticker, the sentiment toward that ticker); ``headline_*``: the headline's own."""

    id: str
    title: str
    url: str | None
    p_negative: float | None
    published_at: datetime
    story_id: str | None = None
    ticker_links: Any = None  # articles.ticker_links: why the article is under a ticker
    sentiment: str | None = None
    sentiment_score: float | None = None
    headline_sentiment: str | None = None
    headline_score: float | None = None
    flags: Any = None  # articles.extra->'flags': what its source flagged (an EDGAR 8-K item 1.03: "bankruptcy")


def _alerts(cur: PgCursor) -> list[Alert]:
    cols = [c.name for c in cur.description]
    return [Alert.from_row(dict(zip(cols, r))) for r in cur.fetchall()]


# ---------------------------------------------------------------------------- counts (the detector's store)
_LEVEL_TABLES = {60: "sentiment_minute", 3600: "sentiment_hour", 86400: "sentiment_day"}


def _bucket_source(bucket_s: int) -> tuple[str, str]:
    """(table, bucket expression) reading counts in buckets of ``bucket_s`` seconds."""
    table = _LEVEL_TABLES.get(bucket_s)
    if table is not None:
        return table, "extract(epoch FROM bucket)::bigint"
    return "sentiment_minute", f"(floor(extract(epoch FROM bucket) / {int(bucket_s)}) * {int(bucket_s)})::bigint"


def bucket_counts(cur: PgCursor, start: int, end: int, kinds: Sequence[str], bucket_s: int = 60) -> list[tuple[Any, ...]]:
    """(bucket, scope_kind, scope, articles, negative, score_sum, stories, negative_stories) of the
    buckets of ``bucket_s`` seconds in [start, end) for the scope kinds ``kinds``."""
    table, expr = _bucket_source(bucket_s)
    cur.execute(
        f"SELECT {expr} AS b, scope_kind, scope, sum(articles)::int, sum(negative)::int, sum(score_sum),"
        f" sum(stories)::int, sum(negative_stories)::int FROM {table} WHERE scope_kind = ANY(%s)"
        " AND bucket >= to_timestamp(%s) AND bucket < to_timestamp(%s) GROUP BY 1, 2, 3",
        (list(kinds), start, end),
    )
    result: list[tuple[Any, ...]] = cur.fetchall()
    return result


def negative_history(cur: PgCursor, kind: str, scope: str, start: int, end: int, bucket_s: int = 60,
                     stories: bool = False) -> dict[int, int]:
    """{bucket: negative articles (or stories)} of one scope, buckets with any."""
    table, expr = _bucket_source(bucket_s)
    col = "negative_stories" if stories else "negative"
    cur.execute(
        f"SELECT {expr} AS b, sum({col})::int FROM {table}"
        f" WHERE scope_kind = %s AND scope = %s AND {col} > 0"
        " AND bucket >= to_timestamp(%s) AND bucket < to_timestamp(%s) GROUP BY 1",
        (kind, scope, start, end),
    )
    return dict(cur.fetchall())


def scope_history(cur: PgCursor, kind: str, scope: str, start: int, end: int, bucket_s: int = 60,
                  stories: bool = False) -> dict[int, tuple[int, int]]:
    """{bucket: (articles, negative)} (or stories) of one scope, buckets with any."""
    table, expr = _bucket_source(bucket_s)
    cols = ("stories", "negative_stories") if stories else ("articles", "negative")
    cur.execute(
        f"SELECT {expr} AS b, sum({cols[0]})::int, sum({cols[1]})::int FROM {table}"
        f" WHERE scope_kind = %s AND scope = %s AND {cols[0]} > 0"
        " AND bucket >= to_timestamp(%s) AND bucket < to_timestamp(%s) GROUP BY 1",
        (kind, scope, start, end),
    )
    return {b: (n_a, n_neg) for b, n_a, n_neg in cur.fetchall()}


def market_volume(cur: PgCursor, start: int, end: int, bucket_s: int = 60, stories: bool = False) -> dict[int, int]:
    """{bucket: articles (or stories)} of scope all."""
    table, expr = _bucket_source(bucket_s)
    col = "stories" if stories else "articles"
    cur.execute(
        f"SELECT {expr} AS b, sum({col})::int FROM {table}"
        f" WHERE scope_kind = 'all' AND scope = 'all' AND {col} > 0"
        " AND bucket >= to_timestamp(%s) AND bucket < to_timestamp(%s) GROUP BY 1",
        (start, end),
    )
    return dict(cur.fetchall())


def first_data_minute(cur: PgCursor, start: int, end: int) -> int | None:
    """The first minute in [start, end) with any article, or None."""
    cur.execute(
        "SELECT extract(epoch FROM min(bucket))::bigint FROM sentiment_minute"
        " WHERE scope_kind = 'all' AND scope = 'all'"
        " AND bucket >= to_timestamp(%s) AND bucket < to_timestamp(%s)",
        (start, end),
    )
    result: int | None = cur.fetchone()[0]
    return result


def alert_starts(cur: PgCursor, kind: str, scope: str, rule: str, start: int, end: int, scale: str = "5m") -> list[int]:
    """Window starts of the scope's alerts of one rule and scale, strictly inside (start, end)."""
    cur.execute(
        "SELECT extract(epoch FROM window_start)::bigint FROM alerts"
        " WHERE scope_kind = %s AND scope = %s AND rule = %s AND scale = %s"
        " AND window_start > to_timestamp(%s) AND window_start < to_timestamp(%s)"
        " ORDER BY window_start",
        (kind, scope, rule, scale, start, end),
    )
    return [r[0] for r in cur.fetchall()]


def incident_spans(cur: PgCursor, kind: str, scope: str, after: int, before: int) -> list[tuple[int, int, int]]:
    """(incident id, first window start, last window end) of the scope's alerts (any scale) ending
    after ``after`` and starting before ``before``, one row per alert, by incident."""
    cur.execute(
        "SELECT coalesce(incident_id, id), extract(epoch FROM min(window_start) OVER w)::bigint,"
        " extract(epoch FROM max(window_end) OVER w)::bigint FROM alerts"
        " WHERE scope_kind = %s AND scope = %s AND window_end > to_timestamp(%s)"
        " AND window_start < to_timestamp(%s)"
        " WINDOW w AS (PARTITION BY coalesce(incident_id, id)) ORDER BY 1",
        (kind, scope, after, before),
    )
    result: list[tuple[int, int, int]] = cur.fetchall()
    return result


def headlines(cur: PgCursor, kind: str, scope: str, start: datetime, end: datetime, limit: int) -> list[Headline]:
    """The most negative article of each story of the scope in [start, end), most negative stories first.

    For a ticker, "negative" and "most negative" are the sentiment toward that ticker
    (:func:`storage.buckets.toward_ticker`: what its buckets count), not the headline's."""
    where = ""
    sentiment, score, p_negative = "a.sentiment", "a.sentiment_score", "a.p_negative"
    if kind == "ticker":
        where = "AND a.tickers @> ARRAY[%(scope)s]::text[]"
        sentiment, score, p_negative = (toward_ticker("a", "%(scope)s", f)
                                        for f in ("sentiment", "sentiment_score", "p_negative"))
    elif kind == "topic":
        where = "AND a.topic = %(scope)s"
    cur.execute(
        "SELECT id, title, url, p_neg, published_at, story, ticker_links, sent, score, sentiment, sentiment_score,"
        " flags FROM (SELECT DISTINCT ON (story) * FROM ("
        f"  SELECT a.*, coalesce(a.story_id, a.id) AS story, {sentiment} AS sent, {score} AS score,"
        f"   {p_negative} AS p_neg, a.extra->'flags' AS flags FROM articles AS a"
        f"  WHERE a.published_at >= %(start)s AND a.published_at < %(end)s {where}) s"
        " WHERE sent = 'negative' ORDER BY story, p_neg DESC NULLS LAST, published_at, id) x"
        " ORDER BY p_neg DESC NULLS LAST, published_at, id LIMIT %(limit)s",
        {"start": start, "end": end, "scope": scope, "limit": limit},
    )
    return [Headline(*r) for r in cur.fetchall()]


# ---------------------------------------------------------------------------- the watermark
def lock_progress(cur: PgCursor, stream: str) -> tuple[int | None, int]:
    """(evaluated_until, generation) of a stream ('live' or 'replay'), its row locked until commit."""
    cur.execute("INSERT INTO alert_progress (stream) VALUES (%s) ON CONFLICT DO NOTHING", (stream,))
    cur.execute(
        "SELECT extract(epoch FROM evaluated_until)::bigint, generation FROM alert_progress"
        " WHERE stream = %s FOR UPDATE",
        (stream,),
    )
    result: tuple[int | None, int] = cur.fetchone()
    return result


def record_sources(cur: PgCursor, stream: str, generation: int, sources: Mapping[str, int | None]) -> None:
    """Store each source's max event time (never going back within a generation; a new generation
    starts over) and when it last advanced."""
    for src, t in sources.items():
        cur.execute(
            "INSERT INTO alert_sources AS s (stream, source, generation, max_event_time, advanced_at)"
            " VALUES (%s, %s, %s, to_timestamp(%s), now())"
            " ON CONFLICT (stream, source) DO UPDATE SET"
            "  max_event_time = CASE WHEN s.generation <> EXCLUDED.generation THEN EXCLUDED.max_event_time"
            "                   ELSE GREATEST(s.max_event_time, EXCLUDED.max_event_time) END,"
            "  advanced_at = CASE WHEN s.generation <> EXCLUDED.generation"
            "                  OR (EXCLUDED.max_event_time IS NOT NULL AND s.max_event_time IS NULL)"
            "                  OR EXCLUDED.max_event_time > s.max_event_time"
            "                THEN now() ELSE s.advanced_at END,"
            "  generation = EXCLUDED.generation",
            (stream, src, generation, t),
        )


def source_times(cur: PgCursor, stream: str, generation: int, idle_s: float) -> list[tuple[int | None, bool]]:
    """(max event time, advanced in the last ``idle_s`` seconds) of every source of the generation."""
    cur.execute(
        "SELECT extract(epoch FROM max_event_time)::bigint, advanced_at >= now() - make_interval(secs => %s)"
        " FROM alert_sources WHERE stream = %s AND generation = %s",
        (float(idle_s), stream, generation),
    )
    result: list[tuple[int | None, bool]] = cur.fetchall()
    return result


def set_progress(cur: PgCursor, stream: str, evaluated: int | None, generation: int) -> None:
    cur.execute(
        "UPDATE alert_progress SET evaluated_until = to_timestamp(%s), generation = %s, updated_at = now()"
        " WHERE stream = %s",
        (evaluated, generation, stream),
    )


def notify_new_alerts(cur: PgCursor, schema: str) -> None:
    """Wake the notifiers (and dashboards) of ``schema`` when this transaction commits."""
    cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, schema))


def listen(cur: PgCursor) -> None:
    """LISTEN on the channel :func:`notify_new_alerts` notifies (an autocommit connection)."""
    cur.execute(f"LISTEN {NOTIFY_CHANNEL}")


# ---------------------------------------------------------------------------- storing alerts
INSERT_COLUMNS = (
    "scope_kind", "scope", "window_start", "window_end", "rule", "articles", "negative",
    "negative_share", "mean_score", "baseline", "baseline_std", "baseline_windows", "z", "top_article_ids",
    "title", "message", "replayed", "watermark", "delivery_status", "scale", "incident_id", "stories",
    "negative_stories", "explanation",
)
_EPOCH_COLUMNS = ("window_start", "window_end", "watermark")  # given as epoch seconds


def insert_alert(cur: PgCursor, values: Mapping[str, Any]) -> Alert | None:
    """Store one alert (``values``: every name of :data:`INSERT_COLUMNS`; window_start, window_end
    and watermark in epoch seconds); None when the same (scope, window, rule, scale) is stored."""
    placeholders = ", ".join("to_timestamp(%s)" if c in _EPOCH_COLUMNS else "%s" for c in INSERT_COLUMNS)
    cur.execute(
        f"INSERT INTO alerts ({', '.join(INSERT_COLUMNS)}) VALUES ({placeholders})"
        " ON CONFLICT ON CONSTRAINT alerts_window_key DO NOTHING"
        f" RETURNING {ALERT_COLUMNS}",
        tuple(values[c] for c in INSERT_COLUMNS),
    )
    row = cur.fetchone()
    if row is None:
        return None
    cols = [c.name for c in cur.description]
    return Alert.from_row(dict(zip(cols, row)))


def open_incident(cur: PgCursor, alert_id: int) -> None:
    """The alert starts an incident of its own."""
    cur.execute("UPDATE alerts SET incident_id = id WHERE id = %s", (alert_id,))


def list_alerts(dsn: str, schema: str, since: datetime | None = None, limit: int | None = None,
                role: str | None = None) -> list[Alert]:
    """Alerts created (or whose window started) at or after ``since``, oldest first (the last
    ``limit`` of them), on a read-only connection of their own."""
    try:
        conn = connect(dsn, schema, role=role, readonly=True, application_name="finsent-alerts")
    except psycopg2.Error as exc:
        raise UserError(f"cannot connect to {redact(dsn)}: {first_line(exc)}") from None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('alerts')")
            if cur.fetchone()[0] is None:
                raise UserError(f"no alerts table in schema '{schema}': run 'finsent db upgrade'")
            q = f"SELECT {ALERT_COLUMNS} FROM alerts"
            params: list[Any] = []
            if since is not None:
                q += " WHERE window_start >= %s OR created_at >= %s"
                params += [since, since]
            if limit:
                q = f"SELECT * FROM ({q} ORDER BY window_start DESC, id DESC LIMIT %s) x"
                params.append(int(limit))
            q += " ORDER BY window_start, id"
            cur.execute(q, params)
            return _alerts(cur)
    finally:
        conn.close()


# ---------------------------------------------------------------------------- delivery
@dataclass(frozen=True)
class Due:
    """A pending alert whose next attempt is due (locked until the transaction ends)."""

    id: int
    scope_kind: str
    scope: str
    title: str
    message: str
    attempts: int
    delivered_to: list[str]


def lock_next_due(cur: PgCursor) -> Due | None:
    """The pending alert due first, locked; rows other notifiers hold are skipped.  None: nothing due."""
    cur.execute(
        "SELECT id, scope_kind, scope, title, message, attempts, delivered_to FROM alerts"
        " WHERE delivery_status = 'pending' AND next_attempt_at <= now()"
        " ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
    )
    row = cur.fetchone()
    if row is None:
        return None
    alert_id, kind, scope, title, message, attempts, done = row
    return Due(alert_id, kind, scope, title, message, attempts, list(done or []))


def mark_unrouted(cur: PgCursor, alert_id: int, why: str) -> None:
    cur.execute("UPDATE alerts SET delivery_status = 'unrouted', last_error = %s WHERE id = %s", (why, alert_id))


def mark_delivered(cur: PgCursor, alert_id: int, attempts: int, delivered_to: Iterable[str]) -> None:
    cur.execute(
        "UPDATE alerts SET delivery_status = 'delivered', delivered_at = now(), attempts = %s,"
        " delivered_to = %s, last_error = NULL WHERE id = %s",
        (attempts, list(delivered_to), alert_id),
    )


def schedule_retry(cur: PgCursor, alert_id: int, attempts: int, delivered_to: Iterable[str], error: str, delay_s: float) -> None:
    """A failed attempt: the targets that accepted it so far, the error, the next try in ``delay_s``."""
    cur.execute(
        "UPDATE alerts SET attempts = %s, delivered_to = %s, last_error = %s,"
        " next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s",
        (attempts, list(delivered_to), error, delay_s, alert_id),
    )


def seconds_until_due(cur: PgCursor) -> float | None:
    """Seconds until the earliest pending alert is due (<= 0: now); None if none is pending."""
    cur.execute(
        "SELECT extract(epoch FROM min(next_attempt_at) - now()) FROM alerts WHERE delivery_status = 'pending'"
    )
    v = cur.fetchone()[0]
    return None if v is None else float(v)
