"""Whatever validation accepts, the real PostgreSQL stores (text and jsonb) and gives back;
rows it refuses are bisected out of the batch, the rest committed."""

from __future__ import annotations

import json
import math
import os
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from storage import migrate
from storage.db import fetch_all
from storage.writer import ArticleRow, Writer
from stream.core.pipeline import article_row, write_isolating
from stream.messages.raw_message import InvalidRecord, parse_record
from tests.unit.stream.test_raw_message_hostile import ANY_TEXT, JSONISH, NOW, TITLES


class Pred:
    topic, topic_score, sentiment = "Earnings", 0.9, "negative"
    p_negative, p_neutral, p_positive, sentiment_score = 0.8, 0.15, 0.05, -0.75


def _json_equal(a, b) -> bool:
    """jsonb gives floats back as numerics; compare numbers by value."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-12)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    return a == b


@pytest.fixture(scope="module")
def db(stack):
    name = f"t_{uuid.uuid4().hex[:10]}"
    migrate.upgrade(stack.dsn, schema=name)
    yield stack.dsn, name
    migrate.drop_schema(stack.dsn, name)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(title=TITLES, summary=st.one_of(st.none(), ANY_TEXT), source=st.one_of(st.none(), ANY_TEXT),
       extra=st.dictionaries(ANY_TEXT, JSONISH, max_size=5))
def test_every_accepted_record_is_stored_and_read_back(db, title, summary, source, extra):
    dsn, schema = db
    msg = {**extra, "title": title, "published_at": "2026-11-22T10:00:00Z", "summary": summary, "source": source,
           "id": uuid.uuid4().hex}
    try:
        item = parse_record(json.dumps(msg).encode(), now=NOW)
    except InvalidRecord:
        return
    row = article_row(item, Pred(), "prop-1")
    with Writer(dsn, schema) as w:
        assert len(w.write_batch([row]).inserted) == 1  # raises if PostgreSQL refuses what validation let through
    got = fetch_all(dsn, schema, "SELECT title, source, extra FROM articles WHERE id = %s", (item.id,))
    assert got[0][:2] == (item.title, item.source)
    assert _json_equal(got[0][2], row.extra)


def _rows(n: int) -> list[ArticleRow]:
    t = datetime(2024, 3, 4, 14, 0, tzinfo=UTC)
    return [ArticleRow(id=f"h{i}", published_at=t, source="s", url=None, title=f"Acme {i}", tickers=["ACME"],
                       topic="Earnings", topic_score=0.9, sentiment="negative", p_negative=0.8, p_neutral=0.15,
                       p_positive=0.05, sentiment_score=-0.75, model_version="v", extra={}) for i in range(n)]


def test_rows_the_database_refuses_are_isolated_and_the_rest_committed(db):
    dsn, schema = db
    rows = _rows(40)
    # rows that bypass validation (a bug, or a future field) and that PostgreSQL or psycopg2 refuse
    rows[5] = replace(rows[5], title="nul \x00 inside")  # psycopg2: ValueError (NUL in a string literal)
    rows[11] = replace(rows[11], extra={"x": float("nan")})  # jsonb: 22P02 Token "NaN" is invalid
    rows[23] = replace(rows[23], id=os.urandom(10_000).hex())  # incompressible; btree: 54000 index row size exceeds maximum
    rows[31] = replace(rows[31], url="\ud800")  # encoding: UnicodeEncodeError (lone surrogate)
    with Writer(dsn, schema) as w:
        out = write_isolating(w, rows)
    bad = {5, 11, 23, 31}
    assert sorted(r.id for r, _ in out.rejected) == sorted(rows[i].id for i in bad)
    assert [r.id for r in out.inserted] == [rows[i].id for i in range(40) if i not in bad]
    details = {r.id: d for r, d in out.rejected}
    assert "json" in details["h11"] and "index row" in details[rows[23].id] and "NUL" in details["h5"]
    stored = fetch_all(dsn, schema, "SELECT count(*) FROM articles WHERE id LIKE 'h%%'")[0][0]
    buckets = fetch_all(dsn, schema, "SELECT sum(articles) FROM sentiment_minute WHERE scope_kind = 'all' "
                                     "AND bucket = '2024-03-04 14:00+00'")[0][0]
    assert stored == buckets == 36
