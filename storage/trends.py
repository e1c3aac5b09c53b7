"""The SQL of trend charts (``finsent plot``) and the demo's read-outs: one scope's buckets and alerts.

Plain functions over a cursor; :func:`connect_reader` opens the read-only connection they run on
(the ``finsent_analyst`` role, else the pipeline's login).  Bucket widths: :data:`BUCKETS` names
each width and where it is read from (sub-hour widths are rolled up from ``sentiment_minute``; hour
and day read the analyst views ``trend_hourly`` / ``trend_daily``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2

from storage.db import ANALYST_ROLE, PgConnection, PgCursor, connect, fetch_all, first_line, redact
from stream.base.errors import UserError

log = logging.getLogger("finsent.plot")

BUCKETS: dict[str, tuple[timedelta, str]] = {  # name -> (width, source)
    "minute": (timedelta(minutes=1), "sentiment_minute"),
    "5min": (timedelta(minutes=5), "sentiment_minute"),
    "15min": (timedelta(minutes=15), "sentiment_minute"),
    "hour": (timedelta(hours=1), "trend_hourly"),
    "day": (timedelta(days=1), "trend_daily"),
}
BUCKET_CHOICES = ("auto", *BUCKETS)

MINUTE_TREND_COLUMNS = ("bucket", "articles", "negative", "neutral", "positive", "score_sum")
TREND_COLUMNS = ("bucket", "articles", "negative", "neutral", "positive", "negative_share", "mean_score")
ALERT_COLUMNS = ("window_start", "window_end", "articles", "negative", "negative_share", "z", "rule",
                 "replayed", "delivery_status")

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def auto_bucket(since: datetime, until: datetime) -> str:
    """A bucket width giving roughly 30..300 points over ``[since, until)``."""
    span = until - since
    if span <= timedelta(hours=3):
        return "minute"
    if span <= timedelta(hours=16):
        return "5min"
    if span <= timedelta(days=2):
        return "15min"
    if span <= timedelta(days=21):
        return "hour"
    return "day"


def floor_to(ts: datetime, width: timedelta) -> datetime:
    """The start of the bucket of ``width`` holding ``ts`` (buckets aligned on 2000-01-01 UTC, as date_bin)."""
    return _EPOCH + ((ts - _EPOCH) // width) * width


def ceil_to(ts: datetime, width: timedelta) -> datetime:
    f = floor_to(ts, width)
    return f if f == ts else f + width


# --------------------------------------------------------------------------- the connection
def connect_reader(dsn: str, analyst_dsn: str, schema: str, *, application_name: str = "finsent-plot",
                   statement_timeout_ms: int = 120_000) -> PgConnection:
    """A read-only connection as the analyst role, else (with a log line) as the pipeline's user."""
    tried = []
    candidates: list[tuple[str, str | None]] = [(analyst_dsn, ANALYST_ROLE)]
    if dsn != analyst_dsn:
        candidates.append((dsn, None))
    for url, role in candidates:
        try:
            conn = connect(url, schema, readonly=True, statement_timeout_ms=statement_timeout_ms,
                           application_name=application_name)
        except psycopg2.OperationalError as exc:
            tried.append(f"{redact(url)}: {first_line(exc)}")
            continue
        if role:
            # the analyst may lack grants on a schema migrated before it existed
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT has_schema_privilege(current_user, %s, 'USAGE')", (schema,))
                    ok = cur.fetchone()[0]
            except psycopg2.Error:  # schema missing: reported by the caller
                ok = True
                conn.rollback()
            if not ok:
                tried.append(f"{redact(url)}: no USAGE on schema {schema}")
                conn.close()
                continue
        elif tried:
            log.info("plot: the %s role cannot read (%s); reading as the pipeline's user", ANALYST_ROLE, tried[-1])
        return conn
    raise UserError("cannot connect to the database to plot: " + "; ".join(tried))


# --------------------------------------------------------------------------- one scope
def tables(cur: PgCursor) -> tuple[bool, bool, bool]:
    """Whether the schema has sentiment_minute, the trend views and alerts."""
    cur.execute("SELECT to_regclass('sentiment_minute'), to_regclass('trend_hourly'), to_regclass('alerts')")
    sentiment_minute, trend_hourly, alerts = (v is not None for v in cur.fetchone())
    return sentiment_minute, trend_hourly, alerts


def resolve_scope(cur: PgCursor, kind: str, scope: str) -> str | None:
    """The stored spelling of a scope (tickers upper case, topics case-insensitively), or None."""
    if kind == "all":
        return "all"
    cur.execute("SELECT 1 FROM sentiment_day WHERE scope_kind = %s AND scope = %s LIMIT 1", (kind, scope))
    if cur.fetchone():
        return scope
    cur.execute(
        "SELECT DISTINCT scope FROM sentiment_day WHERE scope_kind = %s AND lower(scope) = lower(%s)",
        (kind, scope),
    )
    found = [r[0] for r in cur.fetchall()]
    return found[0] if len(found) == 1 else None


def top_scopes(cur: PgCursor, kind: str, limit: int = 8) -> list[str]:
    """The scopes of a kind with the most articles."""
    cur.execute(
        "SELECT scope FROM sentiment_day WHERE scope_kind = %s GROUP BY scope ORDER BY sum(articles) DESC, scope LIMIT %s",
        (kind, limit),
    )
    return [r[0] for r in cur.fetchall()]


def extent(cur: PgCursor, kind: str, scope: str) -> tuple[datetime | None, datetime | None]:
    """[first, end) of the scope's data: minutes, else (pruned minutes) days; (None, None) if none."""
    cur.execute(
        "SELECT min(bucket), max(bucket) FROM sentiment_minute WHERE scope_kind = %s AND scope = %s",
        (kind, scope),
    )
    lo, hi = cur.fetchone()
    if lo is None:
        cur.execute("SELECT min(bucket), max(bucket) FROM trend_daily WHERE scope_kind = %s AND scope = %s",
                    (kind, scope))
        lo, hi = cur.fetchone()
        if lo is not None:
            return lo, hi + timedelta(days=1)
        return None, None
    return lo, hi + timedelta(minutes=1)


def trend_rows(cur: PgCursor, kind: str, scope: str, bucket: str, since: datetime, until: datetime
               ) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """(column names, rows) of the scope's buckets of width ``bucket`` (a :data:`BUCKETS` name) in
    [since, until): :data:`MINUTE_TREND_COLUMNS` rolled up from minutes, or :data:`TREND_COLUMNS` of a view."""
    width, source = BUCKETS[bucket]
    if source == "sentiment_minute":
        cur.execute(
            """
            SELECT date_bin(%s::interval, bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
                   sum(articles)::bigint, sum(negative)::bigint, sum(neutral)::bigint,
                   sum(positive)::bigint, sum(score_sum)
            FROM sentiment_minute
            WHERE scope_kind = %s AND scope = %s AND bucket >= %s AND bucket < %s
            GROUP BY 1 ORDER BY 1
            """,
            (width, kind, scope, since, until),
        )
        return MINUTE_TREND_COLUMNS, cur.fetchall()
    cur.execute(
        f"""
        SELECT bucket, articles, negative, neutral, positive, negative_share, mean_score
        FROM {source}
        WHERE scope_kind = %s AND scope = %s AND bucket >= %s AND bucket < %s
        ORDER BY bucket
        """,
        (kind, scope, since, until),
    )
    return TREND_COLUMNS, cur.fetchall()


def alert_windows(cur: PgCursor, kind: str, scope: str, since: datetime, until: datetime) -> list[tuple[Any, ...]]:
    """:data:`ALERT_COLUMNS` of the scope's alerts overlapping [since, until), by window start."""
    cur.execute(
        f"""
        SELECT {", ".join(ALERT_COLUMNS)}
        FROM alerts
        WHERE scope_kind = %s AND scope = %s AND window_end > %s AND window_start < %s
        ORDER BY window_start
        """,
        (kind, scope, since, until),
    )
    rows: list[tuple[Any, ...]] = cur.fetchall()
    return rows


# --------------------------------------------------------------------------- the demo's read-outs
# Each on a short-lived connection of its own (storage.db.fetch_all), as the pipeline's login.
def counts(dsn: str, schema: str) -> tuple[int, int]:
    """(articles stored, alerts stored)."""
    return fetch_all(dsn, schema, "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM alerts)")[0]


def ticker_movers(dsn: str, schema: str, limit: int = 10, min_articles: int = 5) -> list[tuple[Any, ...]]:
    """(ticker, articles, negative, negative share, mean score) of the tickers with the lowest mean score."""
    return fetch_all(dsn, schema, """
        SELECT scope, sum(articles)::int AS articles, sum(negative)::int AS negative,
               round((sum(negative)::numeric / nullif(sum(articles), 0)), 2) AS negative_share,
               round((sum(score_sum) / nullif(sum(articles), 0))::numeric, 3) AS mean_score
        FROM sentiment_minute WHERE scope_kind = 'ticker'
        GROUP BY scope HAVING sum(articles) >= %s
        ORDER BY mean_score ASC, negative DESC LIMIT %s""", (min_articles, limit))


def alert_summaries(dsn: str, schema: str) -> list[tuple[Any, ...]]:
    """(scope_kind, scope, window_start, window_end, negative, articles, z rounded, delivery_status,
    top_article_ids, scale) of every alert, by window start."""
    return fetch_all(dsn, schema, """
        SELECT a.scope_kind, a.scope, a.window_start, a.window_end, a.negative, a.articles,
               round(a.z::numeric, 1), a.delivery_status, a.top_article_ids, a.scale
        FROM alerts a ORDER BY a.window_start, a.scope_kind, a.scope""")


def titles(dsn: str, schema: str, ids: list[str]) -> list[tuple[Any, ...]]:
    """(id, title, sentiment score rounded to 2 places) of the given articles, in no order."""
    return fetch_all(dsn, schema, "SELECT id, title, round(sentiment_score::numeric, 2) FROM articles WHERE id = ANY(%s)",
                     (list(ids),))


def ticker_sentiments(dsn: str, schema: str, ids: list[str]) -> list[tuple[Any, ...]]:
    """(id, title, ticker, sentiment, score, sentiment source, headline sentiment, headline score) of each
    ticker of the given articles (the article_ticker_sentiment view), by publication time and ticker."""
    return fetch_all(dsn, schema, """
        SELECT id, title, ticker, sentiment, round(sentiment_score::numeric, 2), sentiment_source,
               headline_sentiment, round(headline_score::numeric, 2)
        FROM article_ticker_sentiment WHERE id = ANY(%s) ORDER BY published_at, id, ticker""", (list(ids),))


def published_at(dsn: str, schema: str, article_id: str) -> datetime:
    """The publication time of one stored article."""
    at: datetime = fetch_all(dsn, schema, "SELECT published_at FROM article_ids WHERE id = %s", (article_id,))[0][0]
    return at


def link_rule_counts(dsn: str, schema: str) -> dict[str, int]:
    """How many ticker links each linking rule made (the article_ticker_links view)."""
    return dict(fetch_all(dsn, schema, "SELECT rule, count(*) FROM article_ticker_links GROUP BY rule"))


def scope_alert_ids(dsn: str, schema: str, kind: str, scope: str) -> list[int]:
    """Ids of one scope's alerts, by window start."""
    rows = fetch_all(dsn, schema, "SELECT id FROM alerts WHERE scope_kind = %s AND scope = %s ORDER BY window_start",
                     (kind, scope))
    return [r[0] for r in rows]
