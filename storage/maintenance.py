"""Partitions, retention and consistency checks.

* :func:`list_partitions` -- the monthly partitions of ``articles`` with bounds.
* :func:`prune` -- ``finsent db prune --older-than 400d``: drops whole monthly
  partitions of ``articles`` that end at or before now - age.  By default the
  trend buckets and the id registry are kept: trends of the pruned months stay
  as they were, and a replay of that period is still recognised (skipped), so
  nothing is counted twice.  ``with_trends=True`` forgets the period entirely
  (ids and minute/hour/day buckets before the same boundary go too), after
  which a replay of it would rebuild it from scratch.
* :func:`verify` -- recomputes the buckets from ``articles`` and the roll-ups
  from ``sentiment_minute`` and reports every difference (used by tests and
  ``finsent db verify``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
from psycopg2 import sql

from storage import buckets
from storage.db import PgConnection, PgCursor, check_schema, connect, first_line, redact
from stream.base.errors import UserError


def list_partitions(cur: PgCursor, schema: str) -> list[dict[str, Any]]:
    """Partitions of ``schema.articles``: name, lower, upper (None for a default partition), estimated rows."""
    cur.execute("SELECT to_regclass(%s)", (f'"{schema}".articles',))
    parent = cur.fetchone()[0]
    if parent is None:
        return []
    cur.execute(
        """
        SELECT c.relname,
               substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \\(''([^'']+)''\\)')::timestamptz,
               substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \\(''([^'']+)''\\)')::timestamptz,
               greatest(c.reltuples, 0)::bigint
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = %s::regclass
        ORDER BY 2 NULLS LAST, 1
        """,
        (parent,),
    )
    return [{"name": n, "lower": lo, "upper": hi, "rows_estimate": r} for n, lo, hi, r in cur.fetchall()]


def _admin(dsn: str, schema: str) -> PgConnection:
    try:
        return connect(dsn, schema, application_name="finsent-admin")
    except psycopg2.Error as exc:
        raise UserError(f"cannot connect to {redact(dsn)}: {first_line(exc)}") from None


def prune(
    dsn: str,
    schema: str = "public",
    older_than: timedelta = timedelta(days=400),
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    with_trends: bool = False,
) -> dict[str, Any]:
    """Drop the article partitions that end at or before ``now - older_than``.

    Returns {"cutoff", "boundary", "dropped": [partition dicts with exact "rows"],
    "ids_deleted", "buckets_deleted"}.  One transaction.
    """
    check_schema(schema)
    now = now or datetime.now(UTC)
    cutoff = now - older_than
    conn = _admin(dsn, schema)
    try:
        with conn.cursor() as cur:
            doomed = [p for p in list_partitions(cur, schema) if p["upper"] is not None and p["upper"] <= cutoff]
            boundary = max((p["upper"] for p in doomed), default=None)
            for p in doomed:
                cur.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(p["name"])))
                p["rows"] = cur.fetchone()[0]
            ids_deleted = buckets_deleted = 0
            if not dry_run:
                for p in doomed:
                    cur.execute(sql.SQL("DROP TABLE {}.{}").format(sql.Identifier(schema), sql.Identifier(p["name"])))
                if with_trends and boundary is not None:
                    cur.execute("DELETE FROM article_ids WHERE published_at < %s", (boundary,))
                    ids_deleted = cur.rowcount
                    for table, _expr in buckets.LEVELS:
                        cur.execute(sql.SQL("DELETE FROM {} WHERE bucket < %s").format(sql.Identifier(table)), (boundary,))
                        buckets_deleted += cur.rowcount
            conn.commit()
        return {"cutoff": cutoff, "boundary": boundary, "dropped": doomed, "ids_deleted": ids_deleted,
                "buckets_deleted": buckets_deleted, "dry_run": dry_run}
    except psycopg2.Error as exc:
        conn.rollback()
        raise UserError(f"prune of schema '{schema}' failed: {first_line(exc)}") from None
    finally:
        conn.close()


def verify_cursor(cur: PgCursor, since: datetime | None = None) -> dict[str, Any]:
    """Differences between the bucket tables and what ``articles`` implies (search_path = the schema).

    ``since`` (default: start of the oldest article partition, since pruned
    months keep their buckets but not their articles) is floored to the day.
    Returns {"since", "minute": n, "hour": n, "day": n, "examples": [...]}.
    """
    if since is None:
        cur.execute("SELECT current_schema()")
        parts = [p for p in list_partitions(cur, cur.fetchone()[0]) if p["lower"] is not None]
        since = parts[0]["lower"] if parts else datetime(1970, 1, 1, tzinfo=UTC)
    cur.execute("SELECT date_trunc('day', %s::timestamptz, 'UTC')", (since,))
    since = cur.fetchone()[0]
    cols = buckets.COUNT_COLUMNS
    differs = " OR ".join(
        f"coalesce(e.{c}, 0) <> coalesce(m.{c}, 0)" for c in cols if c != "score_sum"
    ) + " OR abs(coalesce(e.score_sum, 0) - coalesce(m.score_sum, 0)) > 1e-6"
    out: dict[str, Any] = {"since": since, "examples": []}
    expected_minute = f"""SELECT * FROM ({buckets.aggregate(
        f"({buckets.contributions('(SELECT * FROM articles WHERE published_at >= %(since)s)')}) AS x", 'minute')}) AS g"""
    checks = [("minute", expected_minute, "sentiment_minute")]
    for level, (table, expr) in zip(("hour", "day"), buckets.LEVELS[1:]):
        rollup = f"""SELECT {expr.replace('minute', 'bucket')} AS bucket, scope_kind, scope,
                            sum(articles) AS articles, sum(negative) AS negative, sum(neutral) AS neutral,
                            sum(positive) AS positive, sum(score_sum) AS score_sum,
                            sum(stories) AS stories, sum(negative_stories) AS negative_stories
                     FROM sentiment_minute WHERE bucket >= %(since)s GROUP BY 1, 2, 3"""
        checks.append((level, rollup, table))
    for level, expected, table in checks:
        cur.execute(
            f"""SELECT coalesce(e.bucket, m.bucket), coalesce(e.scope_kind, m.scope_kind), coalesce(e.scope, m.scope),
                       e.articles, m.articles
                FROM ({expected}) AS e
                FULL JOIN (SELECT * FROM {table} WHERE bucket >= %(since)s) AS m
                  ON m.bucket = e.bucket AND m.scope_kind = e.scope_kind AND m.scope = e.scope
                WHERE {differs}""",
            {"since": since},
        )
        rows = cur.fetchall()
        out[level] = len(rows)
        out["examples"] += [(level, *r) for r in rows[:5]]
    return out


def verify(dsn: str, schema: str = "public", since: datetime | None = None) -> dict[str, Any]:
    check_schema(schema)
    conn = _admin(dsn, schema)
    try:
        conn.set_session(readonly=True)
        with conn.cursor() as cur:
            return verify_cursor(cur, since)
    finally:
        conn.close()
