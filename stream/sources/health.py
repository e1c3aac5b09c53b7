"""Feed health into PostgreSQL (the ``feeds`` table of migration 0008), as the ``finsent_writer`` role.

Best effort: the poller's job is news.raw.  A database that is down or not upgraded costs one warning
and a pause of :data:`PAUSE_S` before the next try, never a stopped poller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import psycopg2

from storage.db import WRITER_ROLE, LazyConnection, RetryPolicy, connect, first_line, redact, transaction
from storage.feeds import Poll, record_poll
from stream.sources.feeds import Outcome

log = logging.getLogger("finsent.feeds")

PAUSE_S = 60.0  # after a failed write, the next try waits this long
POLICY = RetryPolicy(attempts=2, initial_s=0.5, max_s=1.0)


class DatabaseHealth:
    def __init__(self, dsn: str, schema: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.dsn = dsn
        self.schema = schema
        self.clock = clock
        self.db = LazyConnection(lambda: connect(dsn, schema, role=WRITER_ROLE, application_name="finsent-ingest",
                                                 connect_timeout=5))
        self._paused_until = 0.0

    def record(self, outcome: Outcome) -> None:
        if self.clock() < self._paused_until:
            return
        f = outcome.feed
        poll = Poll(name=f.name, url=f.url, kind=f.kind, at=outcome.at, ok=outcome.ok, items=outcome.items,
                    error=outcome.error if outcome.error is None else f"{outcome.reason}: {outcome.error}",
                    failures=outcome.failures, healthy=outcome.healthy, next_at=outcome.next_at,
                    title=f.title or None, interval_s=f.interval_s)
        try:
            transaction(self.db, lambda conn: record_poll(conn.cursor(), poll), policy=POLICY, sleep=time.sleep)
        except psycopg2.errors.UndefinedTable:
            self._pause(f"schema '{self.schema}' has no feeds table: run 'finsent db upgrade'")
        except psycopg2.Error as exc:
            self._pause(f"{redact(self.dsn)}: {first_line(exc)}")

    def _pause(self, why: str) -> None:
        self._paused_until = self.clock() + PAUSE_S
        self.db.drop()
        log.warning("feed health not recorded in the database (%s); trying again in %.0f s", why, PAUSE_S)

    def close(self) -> None:
        self.db.close()
