"""``finsent sql``'s query runner: one read-only statement as the analyst role."""

from __future__ import annotations

from typing import Any

from storage.db import connect
from storage.sqlguard import single_statement


def run_query(dsn: str, schema: str, query: str, timeout: str = "60s") -> tuple[list[str] | None, list[tuple[Any, ...]]]:
    """Run ``query`` read-only; returns (columns, rows) -- columns None when it returns no rows.

    One statement per call (``storage.sqlguard``): several in one string could leave the
    read-only transaction.
    """
    single_statement(query)
    conn = connect(dsn, schema, readonly=True, application_name="finsent-sql")
    try:
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = %s", (timeout,))
            cur.execute(query)
            if cur.description is None:
                return None, []
            cols = [d.name for d in cur.description]
            return cols, cur.fetchall()
    finally:
        conn.rollback()
        conn.close()
