"""Migrations, roles, views, retention and `finsent sql` against the real PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
from psycopg2 import sql

from storage import maintenance, migrate
from storage.writer import Writer
from stream.base.errors import UserError
from tests.support.sample_rows import Spike, sample_rows, utc, write_all


def admin(stack, schema):
    conn = psycopg2.connect(stack.dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        cur.execute("SET TimeZone = 'UTC'")
    return conn


def one(conn, q, args=None):
    with conn.cursor() as cur:
        cur.execute(q, args)
        return cur.fetchone()


def catalog_snapshot(conn, schema):
    """Objects, their privileges, and the version rows of a schema."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT c.relname, c.relkind, coalesce(c.relacl::text, '') FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s ORDER BY 1", (schema,))
        objs = cur.fetchall()
        cur.execute(sql.SQL("SELECT version, name, checksum, applied_at FROM {}.schema_version ORDER BY 1")
                    .format(sql.Identifier(schema)))
        return objs, cur.fetchall()


@pytest.fixture
def fresh_schema(stack):
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    conn = psycopg2.connect(stack.dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    conn.close()


# ---------------------------------------------------------------- migrations
def test_migrations_from_empty_then_rerun_is_a_noop(stack, fresh_schema):
    assert migrate.current_version(stack.dsn, fresh_schema) == 0
    v = migrate.upgrade(stack.dsn, schema=fresh_schema)
    assert v == migrate.code_version() == migrate.current_version(stack.dsn, fresh_schema)
    conn = admin(stack, fresh_schema)
    try:
        before = catalog_snapshot(conn, fresh_schema)
        names = {o[0] for o in before[0]}
        for obj in ("articles", "article_ids", "sentiment_minute", "alerts", "trend_hourly", "trend_daily",
                    "latest_alerts", "schema_version"):
            assert obj in names
        assert [r[0] for r in before[1]] == list(range(1, v + 1))
        assert migrate.upgrade(stack.dsn, schema=fresh_schema) == v
        assert migrate.upgrade(stack.dsn, schema=fresh_schema) == v
        assert catalog_snapshot(conn, fresh_schema) == before
        st = migrate.status(stack.dsn, fresh_schema)
        assert st["pending"] == [] and st["version"] == v
        # partitions of the current month and two ahead exist
        now = datetime.now(UTC)
        assert any(p["lower"] <= now < p["upper"] for p in st["partitions"])
        assert len([p for p in st["partitions"] if p["upper"] > now]) >= 3
    finally:
        conn.close()


def test_refuses_a_database_newer_than_the_code(stack, schema):
    conn = admin(stack, schema)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO schema_version (version, name, checksum) VALUES (999, 'future', 'x')")
        with pytest.raises(UserError, match="newer than this finsent"):
            migrate.upgrade(stack.dsn, schema=schema)
    finally:
        conn.close()


def test_cli_upgrade_and_status(stack, schema, capsys):
    from stream.cli import main

    assert main(["db", "upgrade", "--schema", schema]) == 0
    assert "nothing to apply" in capsys.readouterr().out
    assert main(["db", "status", "--schema", schema]) == 0
    out = capsys.readouterr().out
    assert f"version:         {migrate.code_version()}" in out and "pending:         none" in out
    assert main(["db", "status", "--schema", schema, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == migrate.code_version()


# ---------------------------------------------------------------- roles
def analyst_conn(stack, schema):
    conn = psycopg2.connect(stack.settings.analyst_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        # prove the *grants* forbid writing, not just the read-only default of the role
        cur.execute("SET default_transaction_read_only = off")
    return conn


WRITE_ATTEMPTS = [
    "INSERT INTO articles (id, published_at, title, sentiment, sentiment_score, model_version) "
    "VALUES ('x', now(), 't', 'neutral', 0, 'v')",
    "INSERT INTO article_ids VALUES ('x', now())",
    "UPDATE sentiment_minute SET articles = articles + 1",
    "UPDATE sentiment_hour SET articles = 0",
    "DELETE FROM sentiment_day",
    "DELETE FROM alerts",
    "INSERT INTO alerts (scope_kind, scope, window_start, window_end, rule, articles, negative, negative_share,"
    " baseline, baseline_std, baseline_windows, z, title, message) VALUES"
    " ('ticker', 'X', now(), now(), 'r', 1, 1, 1, 0, 1, 1, 1, 't', 'm')",
    "TRUNCATE article_ids",
    "TRUNCATE schema_version",
    "CREATE TABLE analyst_table (x int)",
    "CREATE VIEW analyst_view AS SELECT 1",
    "CREATE INDEX ON articles (title)",
    "ALTER TABLE articles ADD COLUMN hacked int",
    "ALTER VIEW trend_daily RENAME TO trend_days",
    "DROP VIEW trend_hourly",
    "DROP TABLE sentiment_minute",
    "SELECT ensure_article_partition(now() + interval '10 years')",
    "COMMENT ON TABLE articles IS 'mine'",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
]


def test_analyst_cannot_write_or_alter_anything(stack, schema):
    conn = analyst_conn(stack, schema)
    try:
        # a partition created after the grants is still readable and still not writable
        assert Writer(stack.dsn, schema).write_batch(list(sample_rows(utc(2013, 2, 1, 12), utc(2013, 2, 1, 14), per_hour=30))).inserted
        attempts = WRITE_ATTEMPTS + ["INSERT INTO articles_2013_02 SELECT * FROM articles_2013_02",
                                     "DELETE FROM articles_2013_02"]
        for stmt in attempts:
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                with conn.cursor() as cur:
                    cur.execute(stmt)
        assert one(conn, "SELECT count(*) FROM articles_2013_02")[0] > 0
        assert one(conn, "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = current_user")[0] is False
    finally:
        conn.close()


def test_analyst_can_read_every_table_and_view(stack, schema):
    conn = analyst_conn(stack, schema)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm')", (schema,))
            names = [r[0] for r in cur.fetchall()]
            assert len(names) >= 10
            for name in names:
                cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name)))
        # read-only by default for psql sessions too
        ro = psycopg2.connect(stack.settings.analyst_dsn)
        try:
            assert one(ro, "SHOW default_transaction_read_only")[0] == "on"
            assert one(ro, "SHOW TimeZone")[0] == "UTC"
        finally:
            ro.close()
    finally:
        conn.close()


def test_writer_role_can_write_but_not_alter(stack, schema):
    conn = psycopg2.connect(stack.dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
            cur.execute("SET ROLE finsent_writer")
            cur.execute("INSERT INTO article_ids VALUES ('w1', now())")
            for stmt in ("DROP TABLE articles", "ALTER TABLE articles ADD COLUMN x int", "TRUNCATE sentiment_minute",
                         "DELETE FROM article_ids", "CREATE TABLE w (x int)"):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(stmt)
    finally:
        conn.close()


# ---------------------------------------------------------------- views
def test_views_totals_equal_the_minute_table(stack, schema):
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    with Writer(stack.dsn, schema) as w:
        n = write_all(w, sample_rows(end - timedelta(days=3), end, per_hour=40, seed=3,
                                     spikes=(Spike("NFLX", end - timedelta(hours=2)),)))
    assert n > 1000
    conn = admin(stack, schema)
    try:
        q = """SELECT scope_kind, scope, sum(articles), sum(negative), sum(neutral), sum(positive),
                      round(sum(mean_score * articles)::numeric, 6)
               FROM {} GROUP BY 1, 2 ORDER BY 1, 2"""
        with conn.cursor() as cur:
            cur.execute("""SELECT scope_kind, scope, sum(articles), sum(negative), sum(neutral), sum(positive),
                                  round(sum(score_sum)::numeric, 6)
                           FROM sentiment_minute GROUP BY 1, 2 ORDER BY 1, 2""")
            minute = cur.fetchall()
            cur.execute(q.format("trend_hourly"))
            hourly = cur.fetchall()
            cur.execute(q.format("trend_daily"))
            daily = cur.fetchall()
        assert minute == hourly == daily
        assert ("all", "all") == minute[0][:2] and minute[0][2] == n
        assert one(conn, "SELECT count(*) FROM articles")[0] == n
        # per row: share and mean are the bucket's own
        bad = one(conn, """SELECT count(*) FROM trend_hourly t JOIN sentiment_hour h USING (bucket, scope_kind, scope)
                           WHERE abs(t.negative_share - h.negative::float / h.articles) > 1e-12
                              OR abs(t.mean_score - h.score_sum / h.articles) > 1e-12
                              OR t.articles <> t.negative + t.neutral + t.positive""")[0]
        assert bad == 0
        # hourly buckets are whole UTC hours, daily whole UTC days
        assert one(conn, "SELECT count(*) FROM trend_hourly WHERE bucket <> date_trunc('hour', bucket, 'UTC')")[0] == 0
        assert one(conn, "SELECT count(*) FROM trend_daily WHERE bucket <> date_trunc('day', bucket, 'UTC')")[0] == 0
        res = maintenance.verify(stack.dsn, schema)
        assert (res["minute"], res["hour"], res["day"]) == (0, 0, 0), res["examples"]
    finally:
        conn.close()


def test_latest_alerts_joins_headlines_in_order(stack, schema):
    t0 = utc(2015, 3, 2, 14, 0)
    rows = list(sample_rows(t0, t0 + timedelta(hours=1), per_hour=60, seed=5))
    with Writer(stack.dsn, schema) as w:
        w.write_batch(rows)
    top = [rows[5].id, rows[2].id, "pruned-or-unknown", rows[9].id]
    conn = admin(stack, schema)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO alerts (scope_kind, scope, window_start, window_end, rule, articles, negative,"
                " negative_share, baseline, baseline_std, baseline_windows, z, top_article_ids, title, message)"
                " VALUES ('ticker', 'AAPL', %s, %s, 'negative_spike', 10, 8, 0.8, 1, 1, 50, 7, %s, 't', 'm')",
                (t0, t0 + timedelta(minutes=5), top))
            cur.execute("SELECT headlines, top_articles, top_article_ids FROM latest_alerts")
            headlines, top_articles, ids = cur.fetchone()
        assert headlines == [rows[5].title, rows[2].title, rows[9].title]
        assert [a["id"] for a in top_articles] == [rows[5].id, rows[2].id, rows[9].id]
        assert ids == top
    finally:
        conn.close()


# ---------------------------------------------------------------- retention
def test_prune_drops_only_old_partitions(stack, schema):
    now = utc(2015, 8, 15, 12)
    old = list(sample_rows(utc(2014, 1, 3), utc(2014, 1, 6), per_hour=6, seed=11))
    mid = list(sample_rows(utc(2014, 6, 10), utc(2014, 6, 12), per_hour=6, seed=12))
    new = list(sample_rows(utc(2015, 8, 1), utc(2015, 8, 3), per_hour=6, seed=13))
    with Writer(stack.dsn, schema) as w:
        for part in (old, mid, new):
            assert len(w.write_batch(part).inserted) == len(part)
    conn = admin(stack, schema)
    try:
        totals_before = one(conn, "SELECT sum(articles) FROM sentiment_minute WHERE scope_kind = 'all'")[0]
        # 400 days before 2015-08-15 is 2014-07-11: January and June 2014 end before it, later months do not
        dry = maintenance.prune(stack.dsn, schema, timedelta(days=400), now=now, dry_run=True)
        assert [p["name"] for p in dry["dropped"]] == ["articles_2014_01", "articles_2014_06"]
        assert one(conn, "SELECT count(*) FROM articles")[0] == len(old) + len(mid) + len(new)

        res = maintenance.prune(stack.dsn, schema, timedelta(days=400), now=now)
        assert [(p["name"], p["rows"]) for p in res["dropped"]] == [("articles_2014_01", len(old)),
                                                                    ("articles_2014_06", len(mid))]
        names = [p["name"] for p in maintenance.list_partitions(conn.cursor(), schema)]
        assert "articles_2014_01" not in names and "articles_2014_06" not in names and "articles_2015_08" in names
        assert one(conn, "SELECT count(*) FROM articles")[0] == len(new)
        # trends and ids of the pruned months are kept; a replay of them counts nothing
        assert one(conn, "SELECT sum(articles) FROM sentiment_minute WHERE scope_kind = 'all'")[0] == totals_before
        with Writer(stack.dsn, schema) as w:
            again = w.write_batch(old)
        assert again.inserted == [] and again.skipped == len(old)
        assert one(conn, "SELECT sum(articles) FROM sentiment_minute WHERE scope_kind = 'all'")[0] == totals_before
        # (the replay re-created the empty January partition: pruning again drops just that)
        again = maintenance.prune(stack.dsn, schema, timedelta(days=400), now=now)["dropped"]
        assert [(p["name"], p["rows"]) for p in again] == [("articles_2014_01", 0)]
        assert maintenance.prune(stack.dsn, schema, timedelta(days=400), now=now)["dropped"] == []
        # --with-trends on a later cutoff forgets everything before the dropped months
        res = maintenance.prune(stack.dsn, schema, timedelta(days=1), now=utc(2015, 10, 1), with_trends=True)
        assert [p["name"] for p in res["dropped"]] == ["articles_2015_08"]
        assert one(conn, "SELECT count(*) FROM article_ids WHERE published_at < '2015-09-01'")[0] == 0
        assert one(conn, "SELECT count(*) FROM sentiment_day WHERE bucket < '2015-09-01'")[0] == 0
    finally:
        conn.close()


def test_prune_cli(stack, schema, capsys):
    from stream.cli import main

    with Writer(stack.dsn, schema) as w:
        w.write_batch(list(sample_rows(utc(2012, 3, 1), utc(2012, 3, 2), per_hour=10)))
    assert main(["db", "prune", "--schema", schema, "--older-than", "400d", "--dry-run"]) == 0
    assert "would drop articles_2012_03" in capsys.readouterr().out
    assert main(["db", "prune", "--schema", schema, "--older-than", "400d"]) == 0
    assert "dropped articles_2012_03" in capsys.readouterr().out
    assert main(["db", "prune", "--schema", schema, "--older-than", "400d"]) == 0
    assert "nothing to drop" in capsys.readouterr().out
    assert main(["db", "verify", "--schema", schema]) == 0


# ---------------------------------------------------------------- finsent sql
def test_sql_cli_outputs_and_errors(stack, schema, capsys):
    from stream.cli import main

    t0 = utc(2016, 1, 4, 9)
    with Writer(stack.dsn, schema) as w:
        w.write_batch(list(sample_rows(t0, t0 + timedelta(hours=3), per_hour=30, seed=2)))
    q = "SELECT scope, sum(articles) AS n FROM trend_daily WHERE scope_kind = 'all' GROUP BY scope"
    assert main(["sql", "--schema", schema, q]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["scope", "|", "n"] and out[2].startswith("all ") and out[-1] == "(1 row)"

    assert main(["sql", "--schema", schema, "--csv", q]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "scope,n" and lines[1].startswith("all,")

    assert main(["sql", "--schema", schema, "--json", "SELECT current_user AS who, 1.5::numeric AS x, now() AS t"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["who"] == "finsent_analyst" and data[0]["x"] == 1.5

    pw = stack.settings.analyst_password.get_secret_value()
    for bad, expect in (("DELETE FROM articles", "read-only transaction"),
                        ("SELECT * FROM no_such_table", "does not exist"),
                        ("SELEC 1", "syntax error"),
                        ("SELECT pg_sleep(5)", "statement timeout")):
        args = ["sql", "--schema", schema, bad] + (["--timeout", "300ms"] if "sleep" in bad else [])
        assert main(args) == 1
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert len(err.splitlines()) == 1 and expect in err, err
        assert pw not in err and captured.out == ""


def test_sql_cli_bad_password_is_one_line_without_secrets(stack, schema, capsys, monkeypatch):
    from stream.cli import main

    monkeypatch.setenv("FINSENT_ANALYST_PASSWORD", "wr0ng-Secret-9")
    assert main(["sql", "--schema", schema, "SELECT 1"]) == 2
    err = capsys.readouterr().err
    assert "wr0ng-Secret-9" not in err and "finsent_analyst" in err and "***" in err
