"""Storage code that needs no database: migrations on disk, validation, formatting, retry policy."""

from __future__ import annotations

import base64
import logging
import re
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from storage import buckets, migrate
from storage.cli import _cell, format_table
from storage.db import check_schema, is_connection_error, is_transient, redact, scrub
from storage.writer import ArticleRow, Writer, WriterUnavailable, _clean
from stream.base.errors import UserError
from stream.base.timeparse import parse_age, parse_time_arg as parse_time
from tests.conftest import REPO


def row(**kw) -> ArticleRow:
    base = dict(id="a1", published_at=datetime(2024, 5, 1, 12, 30, tzinfo=UTC), source="s", url=None,
                title="AAPL beats", tickers=["AAPL"], topic="Earnings", topic_score=0.9, sentiment="positive",
                p_negative=0.1, p_neutral=0.1, p_positive=0.8, sentiment_score=0.7, model_version="v1", extra={})
    base.update(kw)
    return ArticleRow(**base)


# ---------------------------------------------------------------- migrations on disk
def test_migrations_are_numbered_without_gaps_and_ordered():
    ms = migrate.available()
    assert [m.version for m in ms] == list(range(1, len(ms) + 1))
    assert ms[0].filename.startswith("0001_")
    assert migrate.code_version() == ms[-1].version >= 3
    # the analyst view over alerts comes after the alerts table
    names = [m.filename for m in ms]
    assert names.index("0002_alerts.sql") < names.index("0003_latest_alerts.sql")


def test_migration_gap_is_refused(tmp_path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0003_c.sql").write_text("SELECT 1;")
    with pytest.raises(UserError, match="0002 is missing"):
        migrate.available(tmp_path)
    (tmp_path / "0002_bad name.sql").write_text("SELECT 1;")
    with pytest.raises(UserError, match="NNNN_name"):
        migrate.available(tmp_path)


def test_core_migration_names_the_contract_objects():
    text = (REPO / "storage" / "migrations" / "0001_core.sql").read_text()
    for name in ("CREATE TABLE articles", "CREATE TABLE sentiment_minute", "CREATE VIEW trend_hourly",
                 "CREATE VIEW trend_daily", "PARTITION BY RANGE (published_at)"):
        assert name in text
    assert "CREATE VIEW latest_alerts" in (REPO / "storage" / "migrations" / "0003_latest_alerts.sql").read_text()


def test_scram_verifier_format_and_no_clear_text():
    v = migrate.scram_verifier("s3cret-pw")
    m = re.fullmatch(r"SCRAM-SHA-256\$4096:([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)", v)
    assert m and "s3cret" not in v
    assert len(base64.b64decode(m.group(1))) == 16
    assert len(base64.b64decode(m.group(2))) == len(base64.b64decode(m.group(3))) == 32
    assert migrate.scram_verifier("x") != migrate.scram_verifier("x")  # salted


# ---------------------------------------------------------------- helpers
def test_redact_and_scrub():
    assert redact("postgresql://u:topsecret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert "topsecret" not in redact("host=h user=u password=topsecret dbname=d")
    assert scrub("boom topsecret boom", "topsecret") == "boom *** boom"
    # a password equal to a visible word (user name) is not blanked out everywhere
    assert scrub("user finsent failed", "finsent", visible="postgresql://finsent:***@h/finsent") == "user finsent failed"


@pytest.mark.parametrize("bad", ["", "1abc", "a-b", "a;drop", 'x"y', "a" * 64])
def test_schema_names_are_validated(bad):
    with pytest.raises(UserError):
        check_schema(bad)
    assert check_schema("replay_2014") == "replay_2014"


def test_error_classification():
    assert is_connection_error(psycopg2.OperationalError("server closed the connection unexpectedly"))
    assert is_connection_error(psycopg2.InterfaceError("connection already closed"))
    assert not is_connection_error(psycopg2.ProgrammingError("syntax"))
    assert not is_transient(psycopg2.DataError("bad"))


def test_parse_age_and_time():
    assert parse_age("400d") == timedelta(days=400)
    assert parse_age("12h") == timedelta(hours=12)
    assert parse_age("2w") == timedelta(weeks=2)
    assert parse_age("30") == timedelta(days=30)
    assert parse_age("1y") == timedelta(days=365)
    with pytest.raises(UserError):
        parse_age("soon")
    now = datetime(2024, 6, 1, tzinfo=UTC)
    assert parse_time("2024-05-01", now) == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_time("2024-05-01T10:00:00Z", now) == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert parse_time("7d", now) == now - timedelta(days=7)
    with pytest.raises(UserError):
        parse_time("yesterday-ish", now)


# ---------------------------------------------------------------- writer validation
def test_clean_validates_and_normalises():
    vals = _clean(row(tickers=["AAPL", "AAPL", "", "MSFT"], sentiment_score=1.0000001))
    assert vals[5] == ["AAPL", "MSFT"]
    assert vals[12] == 1.0
    with pytest.raises(ValueError, match="timezone-aware"):
        _clean(row(published_at=datetime(2024, 5, 1)))
    with pytest.raises(ValueError, match="sentiment"):
        _clean(row(sentiment="bearish"))
    with pytest.raises(ValueError, match="finite"):
        _clean(row(sentiment_score=float("nan")))
    with pytest.raises(ValueError, match="id"):
        _clean(row(id=""))


def test_write_sql_is_one_statement_with_the_id_registry_first():
    from storage.writer import WRITE_SQL

    assert WRITE_SQL.count("%s") == 1  # one VALUES list: a single round trip per batch
    assert WRITE_SQL.index("INSERT INTO article_ids") < WRITE_SQL.index("INSERT INTO articles")
    assert "ON CONFLICT (id) DO NOTHING" in WRITE_SQL
    for table, _ in buckets.LEVELS:
        assert f"INSERT INTO {table}" in WRITE_SQL


def test_writer_gives_up_after_deadline_and_logs_redacted(monkeypatch, caplog):
    calls = []

    def refuse(*a, **kw):
        calls.append(1)
        raise psycopg2.OperationalError('connection to server at "127.0.0.1", port 1 failed: Connection refused')

    monkeypatch.setattr("storage.db.psycopg2.connect", refuse)
    w = Writer("postgresql://finsent_writer:hunter22@127.0.0.1:1/finsent", "public",
               retry_deadline_s=0.5, retry_initial_s=0.05, retry_max_s=0.1)
    caplog.set_level(logging.WARNING, logger="finsent.storage.writer")
    with pytest.raises(WriterUnavailable) as err:
        w.write_batch([row()])
    assert len(calls) >= 3  # retried with backoff
    assert "hunter22" not in str(err.value) and "***" in str(err.value)
    assert caplog.records and all("hunter22" not in r.getMessage() for r in caplog.records)
    assert "retrying" in caplog.records[0].getMessage()


def test_writer_does_not_retry_bad_credentials(monkeypatch):
    def refuse(*a, **kw):
        raise psycopg2.OperationalError('FATAL:  password authentication failed for user "finsent_writer"')

    monkeypatch.setattr("storage.db.psycopg2.connect", refuse)
    w = Writer("postgresql://finsent_writer:hunter22@127.0.0.1:1/finsent", retry_initial_s=0.01)
    with pytest.raises(UserError, match="password authentication failed") as err:
        w.write_batch([row()])
    assert "hunter22" not in str(err.value)


def test_empty_batch_needs_no_database():
    res = Writer("postgresql://nobody@127.0.0.1:1/x").write_batch([])
    assert res.inserted == [] and res.skipped == 0


# ---------------------------------------------------------------- sql output
def test_format_table_aligns_and_counts():
    out = format_table(["ticker", "articles", "share"], [("AAPL", 12, 0.25), ("NVDA", 3, None)])
    lines = out.splitlines()
    assert lines[0].split("|")[0].strip() == "ticker"
    assert lines[2].startswith("AAPL") and lines[2].split("|")[1] == "       12 "
    assert lines[-1] == "(2 rows)"
    assert len({len(lines[1])}) == 1


def test_cell_formats_like_postgres():
    assert _cell(None) == ""
    assert _cell(True) == "true"
    assert _cell(["AAPL", "a b", None]) == '{AAPL,"a b",NULL}'
    assert _cell([{"id": "x"}]) == '[{"id": "x"}]'
    assert _cell({"k": 1}) == '{"k": 1}'


def test_cookbook_section_has_enough_explained_queries():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Analyst SQL cookbook", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"(?ms)^([^\n]*)\n\n```sql\n(.*?)```", section)
    assert len(blocks) >= 8
    assert len(blocks) == section.count("```sql"), "every sql block needs a one-line explanation before it"
    for explanation, query in blocks:
        assert explanation.strip(), f"query without an explanation line: {query[:60]}"
        assert "public." not in query, "cookbook queries must use unqualified names"


def test_the_commit_steps_run_in_their_named_order_in_one_statement():
    from storage.writer import COMMIT_STEPS, WRITE_SQL

    assert [name for name, _ in COMMIT_STEPS] == ["new_ids", "ins", "contrib"]
    at = [WRITE_SQL.index(f"{name} AS (") for name, _ in COMMIT_STEPS]
    at += [WRITE_SQL.index(f"INSERT INTO {table} ") for table, _ in buckets.LEVELS]  # then the bucket bumps
    assert at == sorted(at) and WRITE_SQL.index("data") < at[0]
    for name, step in COMMIT_STEPS:
        assert f"{name} AS ({step()})" in WRITE_SQL
