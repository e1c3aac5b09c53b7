"""Every ```sql block of the README's "Analyst SQL cookbook" runs as finsent_analyst and returns rows.

The schema is filled the way the pipeline fills it: a generated stream of
scored articles (35 days up to now, with a sharp negative NFLX burst (40 articles in 10 minutes) 5 hours ago and
news around three Fed decisions; with per-company sentiment, some headlines good news for one ticker and bad
for another) written through ``storage.writer.Writer``,
then the spike detector (``alerts.service.AlertService``) run over the last
hours so ``latest_alerts`` has something to show.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

from storage import migrate
from storage.analyst import run_query
from storage.writer import Writer
from tests.support.sample_rows import Spike, sample_rows, write_all

README = Path(__file__).resolve().parents[2] / "README.md"
FED_DECISIONS = ("2025-09-17", "2025-10-29", "2025-12-10")  # the dates query 2 uses


def cookbook_queries() -> list[tuple[str, str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Analyst SQL cookbook", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"(?ms)^([^\n]*)\n\n```sql\n(.*?)```", section)
    return [(re.sub(r"[*`]", "", expl).split(":")[0].strip(), query) for expl, query in blocks]


QUERIES = cookbook_queries()


def test_cookbook_has_at_least_eight_queries():
    assert len(QUERIES) >= 8


@pytest.fixture(scope="module")
def filled(stack):
    name = f"t_cook_{uuid.uuid4().hex[:8]}"
    migrate.upgrade(stack.dsn, schema=name)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    try:
        with Writer(stack.dsn, name) as w:
            write_all(w, sample_rows(now - timedelta(days=35), now, per_hour=12, seed=7, per_ticker=True,
                                     spikes=(Spike("NFLX", now - timedelta(hours=5), minutes=10, articles=40),)))
            for i, d in enumerate(FED_DECISIONS):
                day = datetime.fromisoformat(d).replace(tzinfo=UTC)
                write_all(w, sample_rows(day - timedelta(days=7), day + timedelta(days=8), per_hour=6, seed=100 + i,
                                         topic_bias={"Fed, Central Banks": -0.2}))
        from alerts.service import AlertService

        settings = stack.settings.replace(schema=name)
        with AlertService(settings) as svc:
            t = now - timedelta(hours=12)
            while t <= now + timedelta(minutes=10):
                svc.observe(t, replay=False, notify=False)
                t += timedelta(minutes=10)
        yield stack.settings.replace(schema=name)
    finally:
        conn = psycopg2.connect(stack.dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        conn.close()


@pytest.mark.parametrize("title,query", QUERIES, ids=[f"q{i + 1}" for i in range(len(QUERIES))])
def test_cookbook_query_runs_as_analyst(filled, title, query):
    cols, rows = run_query(filled.analyst_dsn, filled.schema, query, timeout="30s")
    assert cols, f"{title}: returns no columns"
    assert rows, f"{title}: returned no rows on the generated stream"
