"""The dashboard's SQL: bounded, parameterized reads of one finsent schema.

Every function takes a cursor of a connection opened by the dashboard as the
read-only ``finsent_analyst`` role (search_path on the schema, read-only
session, statement timeout) and returns plain dicts/lists ready for JSON.
Values are always bound parameters; the only composed SQL names are fixed
identifiers chosen from constants here (a table per bucket width, optional
columns that a later migration adds), never text from a request.

Optional columns are tolerated: ``articles.ticker_links`` (entity linking,
migration 0004) and any column later migrations add to ``alerts`` (scale,
incident...) show up when present and are simply absent before.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from psycopg2 import sql

from storage.buckets import toward_ticker
from storage.db import PgCursor
from storage.trends import ceil_to, floor_to

# The columns of 0002's alerts table: everything else a later migration adds is passed through as "extra".
ALERT_CORE = (
    "id", "scope_kind", "scope", "window_start", "window_end", "rule", "articles", "negative",
    "negative_share", "mean_score", "baseline", "baseline_std", "baseline_windows", "z",
    "top_article_ids", "title", "message", "replayed", "watermark", "created_at", "delivery_status",
    "attempts", "next_attempt_at", "delivered_to", "last_error", "delivered_at",
)
# never shown: a column whose name says it may hold a target address
_HIDDEN_ALERT_COLUMN = re.compile(r"url|target|address|endpoint|secret|token|password", re.IGNORECASE)
ALERT_LIST_COLUMNS = (
    "id", "created_at", "scope_kind", "scope", "window_start", "window_end", "rule", "articles", "negative",
    "negative_share", "mean_score", "baseline", "z", "replayed", "delivery_status", "title",
)
ARTICLE_COLUMNS = ("id", "published_at", "source", "url", "title", "tickers", "topic", "topic_score",
                   "sentiment", "p_negative", "sentiment_score")
OPTIONAL_ARTICLE_COLUMNS = ("ticker_links",)
# ranges longer than this are summed from the hourly roll-up (widened to whole hours)
EXACT_SPAN = timedelta(days=3)
_URLISH = re.compile(r"\b[a-z][a-z0-9+.\-]*://\S+", re.IGNORECASE)


def _rows(cur: PgCursor) -> list[dict[str, Any]]:
    names = [d.name for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


def columns(cur: PgCursor, table: str) -> set[str]:
    """Column names of a table of the current schema (as the analyst can see them)."""
    cur.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s",
        (table,),
    )
    return {r[0] for r in cur.fetchall()}


def extent(cur: PgCursor) -> dict[str, Any]:
    """First and last minute with data, and the newest alert id (0 when none)."""
    cur.execute("SELECT min(bucket), max(bucket) FROM sentiment_minute WHERE scope_kind = 'all' AND scope = 'all'")
    lo, hi = cur.fetchone()
    cur.execute("SELECT coalesce(max(id), 0) FROM alerts")
    last_alert = cur.fetchone()[0]
    return {"first": lo, "last": None if hi is None else hi + timedelta(minutes=1), "last_alert_id": int(last_alert)}


# --------------------------------------------------------------------------- trends
_TREND_MINUTE = """
    SELECT date_bin(%s::interval, bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
           sum(articles)::bigint AS articles, sum(negative)::bigint AS negative,
           sum(neutral)::bigint AS neutral, sum(positive)::bigint AS positive,
           sum(score_sum) AS score_sum
    FROM sentiment_minute
    WHERE scope_kind = %s AND scope = %s AND bucket >= %s AND bucket < %s
    GROUP BY 1 ORDER BY 1 LIMIT %s
"""
_TREND_ROLLUP = sql.SQL("""
    SELECT bucket, articles::bigint, negative::bigint, neutral::bigint, positive::bigint, score_sum
    FROM {table}
    WHERE scope_kind = %s AND scope = %s AND bucket >= %s AND bucket < %s
    ORDER BY bucket LIMIT %s
""")
_ROLLUP_TABLES = {"hour": "sentiment_hour", "day": "sentiment_day"}


def trend(cur: PgCursor, kind: str, scope: str, since: datetime, until: datetime, bucket: str, width: timedelta,
          max_points: int = 5000) -> dict[str, Any]:
    """Buckets of one scope over ``[since, until)`` widened to whole buckets, with totals."""
    q_since, q_until = floor_to(since, width), ceil_to(until, width)
    if bucket in _ROLLUP_TABLES:
        cur.execute(_TREND_ROLLUP.format(table=sql.Identifier(_ROLLUP_TABLES[bucket])),
                    (kind, scope, q_since, q_until, max_points))
    else:
        cur.execute(_TREND_MINUTE, (width, kind, scope, q_since, q_until, max_points))
    points = []
    tot = {"articles": 0, "negative": 0, "neutral": 0, "positive": 0, "score_sum": 0.0}
    for b, arts, neg, neu, pos, ssum in cur.fetchall():
        arts, neg, neu, pos, ssum = int(arts), int(neg), int(neu), int(pos), float(ssum)
        points.append({
            "bucket": b, "articles": arts, "negative": neg, "neutral": neu, "positive": pos,
            "negative_share": neg / arts if arts else None, "mean_score": ssum / arts if arts else None,
        })
        for k, v in (("articles", arts), ("negative", neg), ("neutral", neu), ("positive", pos), ("score_sum", ssum)):
            tot[k] += v
    arts = tot["articles"]
    totals: dict[str, float | None] = {k: tot[k] for k in ("articles", "negative", "neutral", "positive")}
    totals["negative_share"] = tot["negative"] / arts if arts else None
    totals["mean_score"] = tot["score_sum"] / arts if arts else None
    return {"since": q_since, "until": q_until, "points": points, "totals": totals}


def scope_alerts(cur: PgCursor, kind: str, scope: str, since: datetime, until: datetime, limit: int) -> list[dict[str, Any]]:
    """Alert windows of one scope overlapping the range (for shading a chart)."""
    cur.execute(
        "SELECT id, window_start, window_end, rule, z, negative, articles, delivery_status FROM alerts"
        " WHERE scope_kind = %s AND scope = %s AND window_end > %s AND window_start < %s"
        " ORDER BY window_start LIMIT %s",
        (kind, scope, since, until, limit),
    )
    out = _rows(cur)
    for r in out:
        r["z"] = _f(r["z"])
    return out


# --------------------------------------------------------------------------- scopes, movers
def _range_source(since: datetime, until: datetime) -> tuple[str, datetime, datetime]:
    """``sentiment_minute`` for short ranges (exact); the hourly roll-up, on whole hours, for long ones."""
    if until - since <= EXACT_SPAN:
        return "sentiment_minute", since, until
    h = timedelta(hours=1)
    return "sentiment_hour", floor_to(since, h), ceil_to(until, h)


_SCOPE_TOTALS = sql.SQL("""
    SELECT scope, sum(articles)::bigint AS articles, sum(negative)::bigint AS negative,
           sum(neutral)::bigint AS neutral, sum(positive)::bigint AS positive,
           sum(negative)::float8 / nullif(sum(articles), 0) AS negative_share,
           sum(score_sum) / nullif(sum(articles), 0) AS mean_score
    FROM {table}
    WHERE scope_kind = %s AND bucket >= %s AND bucket < %s
    GROUP BY scope
    ORDER BY sum(articles) DESC, scope
    LIMIT %s
""")


def scope_totals(cur: PgCursor, kind: str, since: datetime, until: datetime, limit: int) -> dict[str, Any]:
    """Per scope of a kind (topics, tickers or 'all'): volume by sentiment, negative share, mean score."""
    table, q_since, q_until = _range_source(since, until)
    cur.execute(_SCOPE_TOTALS.format(table=sql.Identifier(table)), (kind, q_since, q_until, limit))
    rows = _rows(cur)
    for r in rows:
        for k in ("articles", "negative", "neutral", "positive"):
            r[k] = int(r[k])
        r["negative_share"], r["mean_score"] = _f(r["negative_share"]), _f(r["mean_score"])
    return {"since": q_since, "until": q_until, "scopes": rows}


_MOVERS = sql.SQL("""
    WITH recent AS (
        SELECT scope AS ticker, sum(articles) AS articles,
               sum(score_sum) / sum(articles) AS mean_score,
               sum(negative)::float8 / sum(articles) AS negative_share
        FROM {table}
        WHERE scope_kind = 'ticker' AND bucket >= %(since)s AND bucket < %(until)s
        GROUP BY scope
        HAVING sum(articles) >= %(min_articles)s
    ), baseline AS (
        SELECT scope AS ticker, sum(articles) AS articles,
               sum(mean_score * articles) / sum(articles) AS mean_score,
               sum(negative)::float8 / sum(articles) AS negative_share
        FROM trend_hourly
        WHERE scope_kind = 'ticker'
          AND bucket >= %(since)s - interval '30 days' AND bucket < %(base_until)s
          AND scope IN (SELECT ticker FROM recent)
        GROUP BY scope
    )
    SELECT r.ticker, r.articles::bigint AS articles, b.articles::bigint AS baseline_articles,
           r.mean_score, b.mean_score AS baseline_mean_score, r.mean_score - b.mean_score AS change,
           r.negative_share, b.negative_share AS baseline_negative_share
    FROM recent AS r LEFT JOIN baseline AS b USING (ticker)
    ORDER BY r.mean_score - b.mean_score ASC NULLS LAST, r.mean_score ASC, r.ticker
    LIMIT %(limit)s
""")


def movers(cur: PgCursor, since: datetime, until: datetime, limit: int, min_articles: int = 5) -> dict[str, Any]:
    """Cookbook query 1 over a chosen range: tickers whose mean score in ``[since, until)`` fell furthest
    below their own 30 days before ``since`` (from the hourly roll-up).  Tickers without any baseline
    follow, by mean score."""
    table, q_since, q_until = _range_source(since, until)
    cur.execute(_MOVERS.format(table=sql.Identifier(table)), {
        "since": q_since, "until": q_until, "base_until": floor_to(q_since, timedelta(hours=1)),
        "min_articles": min_articles, "limit": limit,
    })
    rows = _rows(cur)
    for r in rows:
        r["articles"] = int(r["articles"])
        r["baseline_articles"] = None if r["baseline_articles"] is None else int(r["baseline_articles"])
        for k in ("mean_score", "baseline_mean_score", "change", "negative_share", "baseline_negative_share"):
            r[k] = _f(r[k])
    return {"since": q_since, "until": q_until, "movers": rows}


def find_scopes(cur: PgCursor, kind: str, prefix: str, limit: int) -> list[dict[str, Any]]:
    """Scopes of a kind whose name starts with ``prefix`` (case-insensitive), busiest first."""
    pattern = re.sub(r"([\\%_])", r"\\\1", prefix) + "%"
    cur.execute(
        "SELECT scope, sum(articles)::bigint AS articles FROM sentiment_day"
        " WHERE scope_kind = %s AND scope ILIKE %s GROUP BY scope ORDER BY sum(articles) DESC, scope LIMIT %s",
        (kind, pattern, limit),
    )
    return [{"scope": s, "articles": int(n)} for s, n in cur.fetchall()]


# --------------------------------------------------------------------------- alerts
def list_alerts(cur: PgCursor, since: datetime | None, until: datetime | None, kind: str | None, scope: str | None,
                limit: int, after_id: int | None = None) -> list[dict[str, Any]]:
    """Alerts newest window first (or, with ``after_id``, those stored after it, oldest first)."""
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in ALERT_LIST_COLUMNS)
    where = [sql.SQL("true")]
    params: list[Any] = []
    if after_id is not None:
        where.append(sql.SQL("id > %s"))
        params.append(after_id)
    if since is not None:
        where.append(sql.SQL("window_end > %s"))
        params.append(since)
    if until is not None:
        where.append(sql.SQL("window_start < %s"))
        params.append(until)
    if kind is not None:
        where.append(sql.SQL("scope_kind = %s"))
        params.append(kind)
    if scope:
        where.append(sql.SQL("scope = %s"))
        params.append(scope)
    order = sql.SQL("id ASC") if after_id is not None else sql.SQL("window_end DESC, id DESC")
    q = sql.SQL("SELECT {cols} FROM alerts WHERE {where} ORDER BY {order} LIMIT %s").format(
        cols=cols, where=sql.SQL(" AND ").join(where), order=order)
    cur.execute(q, (*params, limit))
    rows = _rows(cur)
    for r in rows:
        for k in ("negative_share", "mean_score", "baseline", "z"):
            r[k] = _f(r[k])
    return rows


def scrub_targets(text: str | None) -> str | None:
    """An error text with every URL-like token replaced (delivery errors name their targets)."""
    if text is None:
        return None
    return _URLISH.sub("<target>", text)


def alert_detail(cur: PgCursor, alert_id: int, targets: list[dict[str, Any]] | None = None, top_limit: int = 20) -> dict[str, Any] | None:
    """Everything an alert stored, its top articles, and delivery per target -- never a target URL.

    ``targets``: the configured apprise targets as ``{"key", "service", "routes": bool}`` (no URL);
    with them each gets delivered / pending / failed / not routed.  Columns added by later migrations
    come back under ``extra`` (those whose names suggest addresses are left out).
    """
    cur.execute("SELECT to_jsonb(a) FROM alerts AS a WHERE a.id = %s", (alert_id,))
    row = cur.fetchone()
    if row is None:
        return None
    data = row[0]
    cur.execute("SELECT window_start, window_end, created_at, watermark, next_attempt_at, delivered_at"
                " FROM alerts WHERE id = %s", (alert_id,))
    times = dict(zip([d.name for d in cur.description], cur.fetchone()))  # as datetimes, not JSON text
    alert = {k: data.get(k) for k in ALERT_CORE if k not in ("delivered_to", "last_error", "message")}
    alert.update(times)
    alert["message"] = data.get("message")  # what was sent: article links, never a target address
    extra = {k: v for k, v in data.items() if k not in ALERT_CORE and not _HIDDEN_ALERT_COLUMN.search(k)}
    delivered = list(data.get("delivered_to") or [])
    status = data.get("delivery_status")
    per_target = []
    for t in targets or []:
        if t["key"] in delivered:
            st = "delivered"
        elif status in ("suppressed", "unrouted") or not t.get("routes", True):
            st = "not routed" if status != "suppressed" else "suppressed"
        elif data.get("last_error"):
            st = "failed, retrying"
        else:
            st = "pending"
        per_target.append({"target": t["service"], "key": t["key"], "status": st})
    known = {t["key"] for t in targets or []}
    for k in delivered:
        if k not in known:  # delivered to a target no longer configured here
            per_target.append({"target": "(not configured here)", "key": k, "status": "delivered"})
    delivery = {
        "status": status, "attempts": data.get("attempts"), "delivered_at": times["delivered_at"],
        "next_attempt_at": times["next_attempt_at"] if status == "pending" else None,
        "last_error": scrub_targets(data.get("last_error")), "delivered_targets": len(delivered),
        "targets": per_target,
    }
    ids = list(data.get("top_article_ids") or [])[:top_limit]
    top = articles_by_id(cur, ids, data.get("scope") if data.get("scope_kind") == "ticker" else None) if ids else []
    return {"alert": alert, "extra": extra, "delivery": delivery, "top_articles": top}


# --------------------------------------------------------------------------- articles
def _article_select(optional: set[str], ticker: bool = False) -> sql.Composed:
    """The article columns; ``ticker``: also the sentiment toward the ticker bound as ``%(ticker)s``
    (``ticker_sentiment``, ``ticker_sentiment_score``, ``ticker_sentiment_source``; see
    :func:`storage.buckets.toward_ticker`)."""
    cols = [sql.Identifier("ar", c) for c in ARTICLE_COLUMNS]
    cols += [sql.Identifier("ar", c) for c in OPTIONAL_ARTICLE_COLUMNS if c in optional]
    if ticker:
        cols += [sql.SQL(f"{_toward(optional, f)} AS {sql_name}")
                 for f, sql_name in (("sentiment", "ticker_sentiment"), ("sentiment_score", "ticker_sentiment_score"))]
        cols.append(sql.SQL("coalesce(ar.ticker_sentiment -> %(ticker)s ->> 'source', 'unscored')"
                            if "ticker_sentiment" in optional else "'unscored'::text") + sql.SQL(" AS ticker_sentiment_source"))
    return sql.SQL(", ").join(cols)


def _toward(optional: set[str], field: str) -> str:
    """SQL of the sentiment toward ``%(ticker)s`` (the headline's on a schema before migration 0007)."""
    return toward_ticker("ar", "%(ticker)s", field) if "ticker_sentiment" in optional else f"ar.{field}"


def _clean_articles(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rows:
        r["sentiment_score"] = _f(r["sentiment_score"])
        r["p_negative"] = _f(r["p_negative"])
        r["topic_score"] = _f(r["topic_score"])
        if "ticker_sentiment_score" in r:
            r["ticker_sentiment_score"] = _f(r["ticker_sentiment_score"])
    return rows


def articles_by_id(cur: PgCursor, ids: list[str], ticker: str | None = None) -> list[dict[str, Any]]:
    """Articles by id, in the order of ``ids`` (missing ones -- pruned -- left out); ``ticker``: with the
    sentiment toward it (the top articles of a ticker alert)."""
    optional = columns(cur, "articles")
    q = sql.SQL(
        "SELECT {cols} FROM unnest(%(ids)s::text[]) WITH ORDINALITY AS t(id, ord)"
        " JOIN article_ids AS ai ON ai.id = t.id"
        " JOIN articles AS ar ON ar.id = ai.id AND ar.published_at = ai.published_at"
        " ORDER BY t.ord"
    ).format(cols=_article_select(optional, ticker is not None))
    cur.execute(q, {"ids": ids, "ticker": ticker})
    return _clean_articles(_rows(cur))


def articles(cur: PgCursor, kind: str, scope: str, since: datetime, until: datetime, limit: int,
             sentiment: str | None = None, order: str = "newest") -> list[dict[str, Any]]:
    """Headlines of a scope in ``[since, until)``: newest first or most negative first.

    For a ticker, each carries the sentiment toward that ticker (``ticker_sentiment*``), and the
    sentiment filter and the "most negative" order are by it (what the ticker's trend counts)."""
    optional = columns(cur, "articles")
    ticker = kind == "ticker"
    where = [sql.SQL("ar.published_at >= %(since)s"), sql.SQL("ar.published_at < %(until)s")]
    params: dict[str, Any] = {"since": since, "until": until, "ticker": scope, "limit": limit}
    if ticker:
        where.append(sql.SQL("ar.tickers @> ARRAY[%(ticker)s]::text[]"))
    elif kind == "topic":
        where.append(sql.SQL("ar.topic = %(ticker)s"))
    if sentiment is not None:
        where.append(sql.SQL(f"{_toward(optional, 'sentiment') if ticker else 'ar.sentiment'} = %(sentiment)s"))
        params["sentiment"] = sentiment
    score = sql.SQL(_toward(optional, "sentiment_score") if ticker else "ar.sentiment_score")
    orders = {"newest": sql.SQL("ar.published_at DESC, ar.id"),
              "negative": sql.SQL("{} ASC, ar.published_at DESC, ar.id").format(score)}
    q = sql.SQL("SELECT {cols} FROM articles AS ar WHERE {where} ORDER BY {order} LIMIT %(limit)s").format(
        cols=_article_select(optional, ticker), where=sql.SQL(" AND ").join(where), order=orders[order])
    cur.execute(q, params)
    return _clean_articles(_rows(cur))


# --------------------------------------------------------------------------- the login, health, single rows
WRITE_PRIVILEGES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE")


def login(cur: PgCursor) -> tuple[str, bool]:
    """(the session's user, whether it is a superuser)."""
    cur.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
    user, superuser = cur.fetchone()
    return user, bool(superuser)


def writable_table(cur: PgCursor, privileges: tuple[str, ...] = WRITE_PRIVILEGES) -> tuple[str, str] | None:
    """A table or view of the current schema that the login holds one of ``privileges`` on:
    (name, privilege), or None."""
    cur.execute(
        "SELECT c.relname, p.priv FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace,"
        " unnest(%s::text[]) AS p(priv)"
        " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v')"
        " AND has_table_privilege(current_user, c.oid, p.priv) LIMIT 1",
        (list(privileges),),
    )
    row = cur.fetchone()
    return None if row is None else (row[0], row[1])


def health(cur: PgCursor) -> tuple[str, bool, bool]:
    """(user, session is read-only, the schema has the finsent tables)."""
    cur.execute("SELECT current_user, current_setting('transaction_read_only'), to_regclass('alerts') IS NOT NULL")
    user, ro, ok_schema = cur.fetchone()
    return user, ro == "on", bool(ok_schema)


def last_alert_id(cur: PgCursor) -> int:
    """The largest alert id stored (0: none)."""
    cur.execute("SELECT coalesce(max(id), 0) FROM alerts")
    return int(cur.fetchone()[0])


def alert_scope(cur: PgCursor, alert_id: int) -> tuple[str, str] | None:
    """(scope_kind, scope) of one alert, or None when there is no such alert."""
    cur.execute("SELECT scope_kind, scope FROM alerts WHERE id = %s", (alert_id,))
    row = cur.fetchone()
    return None if row is None else (row[0], row[1])
