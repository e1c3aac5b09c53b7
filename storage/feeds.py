"""The SQL of feed health (migration 0008): the poller records every poll of a feed; ``finsent status``,
``finsent ingest --list`` and the dashboard read the ``feeds`` view.

Plain functions over a cursor (the poller's is the ``finsent_writer`` role's, the dashboard's the read-only
analyst's), plus :func:`read_feeds` on a short-lived connection for the commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg2

from storage.db import PgCursor, connect

FEED_COLUMNS = ("name", "url", "kind", "title", "state", "healthy", "consecutive_failures", "last_poll_at",
                "last_success_at", "last_error", "last_error_at", "items_24h", "items_total", "interval_s",
                "next_poll_at", "overdue")
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Poll:
    """One poll of one feed, as the poller saw it."""

    name: str
    url: str
    kind: str
    at: datetime
    ok: bool
    items: int = 0  # new items sent (a success)
    error: str | None = None  # what went wrong (a failure)
    failures: int = 0  # consecutive failures, this one included
    healthy: bool = True  # the poller's verdict (failures below feeds.unhealthy_after)
    next_at: datetime | None = None  # when the feed is polled next
    title: str | None = None
    interval_s: float | None = None


_UPSERT = """
INSERT INTO feed_status AS f (name, url, kind, title, interval_s, last_poll_at, last_success_at, last_error,
                              last_error_at, consecutive_failures, healthy, next_poll_at, items_total, updated_at)
VALUES (%(name)s, %(url)s, %(kind)s, %(title)s, %(interval_s)s, %(at)s,
        CASE WHEN %(ok)s THEN %(at)s END, %(error)s, CASE WHEN %(ok)s THEN NULL ELSE %(at)s END,
        %(failures)s, %(healthy)s, %(next_at)s, %(items)s, now())
ON CONFLICT (name) DO UPDATE SET
    url = EXCLUDED.url, kind = EXCLUDED.kind, title = EXCLUDED.title, interval_s = EXCLUDED.interval_s,
    last_poll_at = EXCLUDED.last_poll_at,
    last_success_at = CASE WHEN %(ok)s THEN EXCLUDED.last_poll_at ELSE f.last_success_at END,
    last_error = CASE WHEN %(ok)s THEN f.last_error ELSE EXCLUDED.last_error END,
    last_error_at = CASE WHEN %(ok)s THEN f.last_error_at ELSE EXCLUDED.last_poll_at END,
    consecutive_failures = EXCLUDED.consecutive_failures, healthy = EXCLUDED.healthy,
    next_poll_at = EXCLUDED.next_poll_at, items_total = f.items_total + EXCLUDED.items_total, updated_at = now()
"""
_HOURLY = """
INSERT INTO feed_items_hourly AS h (name, hour, items)
VALUES (%s, date_trunc('hour', %s::timestamptz, 'UTC'), %s)
ON CONFLICT (name, hour) DO UPDATE SET items = h.items + EXCLUDED.items
"""


def record_poll(cur: PgCursor, poll: Poll) -> None:
    """Store one poll: the feed's row, and its new items in the hour's count (one transaction: the caller's)."""
    error = None if poll.error is None else poll.error[:MAX_ERROR_CHARS]
    cur.execute(_UPSERT, {"name": poll.name, "url": poll.url, "kind": poll.kind, "title": poll.title,
                          "interval_s": poll.interval_s, "at": poll.at, "ok": poll.ok, "error": error,
                          "failures": 0 if poll.ok else poll.failures, "healthy": poll.ok or poll.healthy,
                          "next_at": poll.next_at, "items": poll.items if poll.ok else 0})
    if poll.ok and poll.items:
        cur.execute(_HOURLY, (poll.name, poll.at, poll.items))


def feed_health(cur: PgCursor) -> list[dict[str, Any]]:
    """Every feed's row of the ``feeds`` view: unhealthy first, then failing, then by name."""
    cur.execute(f"SELECT {', '.join(FEED_COLUMNS)} FROM feeds"
                " ORDER BY healthy, consecutive_failures DESC, name")
    return [dict(zip(FEED_COLUMNS, r)) for r in cur.fetchall()]


def read_feeds(dsn: str, schema: str) -> list[dict[str, Any]] | None:
    """:func:`feed_health` on a short-lived connection; None when the schema has no ``feeds`` view yet
    (a database older than migration 0008: ``finsent db upgrade``).  Connection errors propagate."""
    conn = connect(dsn, schema, readonly=True, application_name="finsent-feeds", connect_timeout=5)
    try:
        with conn.cursor() as cur:
            try:
                return feed_health(cur)
            except psycopg2.errors.UndefinedTable:
                return None
    finally:
        conn.close()
