"""Security pass, as tests: the analyst role cannot write, escape read-only, run programs,
read files or secrets; `finsent sql` sessions are bounded; no configured secret leaks."""

from __future__ import annotations

import os
import uuid

import psycopg2
import pytest

from storage.analyst import run_query
from storage.db import ANALYST_ROLE, connect
from tests.integration.workers import finsent, query

PWNED = f"/tmp/finsent-pwned-{uuid.uuid4().hex[:8]}"

ESCAPES = {
    "insert": "INSERT INTO article_ids (id, published_at) VALUES ('x', now())",
    "delete": "DELETE FROM articles",
    "update alerts": "UPDATE alerts SET delivery_status = 'delivered'",
    "truncate": "TRUNCATE sentiment_minute",
    "SET TRANSACTION READ WRITE": "SET TRANSACTION READ WRITE; DELETE FROM articles",
    "COMMIT; DELETE": "COMMIT; DELETE FROM articles",
    "read-only off then DELETE": "COMMIT; SET default_transaction_read_only = off; DELETE FROM articles",
    "read-only off then INSERT": "COMMIT; SET default_transaction_read_only = off; "
                                 "INSERT INTO article_ids (id, published_at) VALUES ('x', now())",
    "COPY TO PROGRAM": f"COPY (SELECT 1) TO PROGRAM 'touch {PWNED}'",
    "COPY TO PROGRAM after read-only off": f"COMMIT; SET default_transaction_read_only = off; "
                                           f"COPY (SELECT 1) TO PROGRAM 'touch {PWNED}'",
    "COPY FROM PROGRAM": "COPY article_ids FROM PROGRAM 'id'",
    "COPY TO server file": f"COPY (SELECT 1) TO '{PWNED}'",
    "pg_read_file": "SELECT pg_read_file('/etc/passwd')",
    "pg_read_binary_file": "SELECT pg_read_binary_file('/etc/shadow')",
    "pg_ls_dir": "SELECT pg_ls_dir('.')",
    "lo_import": "SELECT lo_import('/etc/passwd')",
    "lo_import after read-only off": "COMMIT; SET default_transaction_read_only = off; SELECT lo_import('/etc/passwd')",
    "CREATE TEMP TABLE": "CREATE TEMP TABLE t AS SELECT 1 AS x",
    "CREATE TEMP TABLE after read-only off": "COMMIT; SET default_transaction_read_only = off; "
                                             "CREATE TEMP TABLE t AS SELECT g FROM generate_series(1, 10) g",
    "temp function shadowing": "COMMIT; SET default_transaction_read_only = off; "
                               "CREATE FUNCTION pg_temp.now() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "SECURITY DEFINER function of the owner": "SELECT ensure_article_partition(now())",
    "SECURITY DEFINER after read-only off": "COMMIT; SET default_transaction_read_only = off; "
                                            "SELECT ensure_article_partition(now() + interval '5 years')",
    "create a function in the schema": "COMMIT; SET default_transaction_read_only = off; "
                                       "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "create a table in public": "COMMIT; SET default_transaction_read_only = off; CREATE TABLE public.x (a int)",
    "SET ROLE writer": "SET ROLE finsent_writer; SELECT 1",
    "SET SESSION AUTHORIZATION": "SET SESSION AUTHORIZATION finsent; SELECT 1",
    "ALTER own role read-write": f"COMMIT; ALTER ROLE {ANALYST_ROLE} SET default_transaction_read_only = off",
    "ALTER own role no timeout": f"COMMIT; ALTER ROLE {ANALYST_ROLE} SET statement_timeout = 0",
    "read password hashes": "SELECT rolname, rolpassword FROM pg_authid",
    "read pg_shadow": "SELECT usename, passwd FROM pg_shadow",
    "read the server config": "SELECT pg_read_file('postgresql.conf')",
    "dblink/extension": "COMMIT; SET default_transaction_read_only = off; CREATE EXTENSION IF NOT EXISTS dblink",
}


# the escapes that worked before `finsent sql` ran one statement per call (found by this test):
# the SET commits with the read-only transaction, and what follows runs read-write
P = "SET default_transaction_read_only = off; COMMIT; "
ESCAPES.update({
    "SET, COMMIT, CREATE TEMP TABLE": P + "CREATE TEMP TABLE t AS SELECT g FROM generate_series(1, 10) g",
    "SET, COMMIT, ALTER own role": P + f"ALTER ROLE {ANALYST_ROLE} SET default_transaction_read_only = off",
    "SET, COMMIT, lo_create": P + "SELECT lo_create(0)",
    "SET, COMMIT, temp function": P + "CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
})


@pytest.mark.parametrize("name", list(ESCAPES))
def test_the_analyst_cannot_write_or_escape(settings, name):
    from storage.sqlguard import SqlShapeError

    with pytest.raises((psycopg2.Error, SqlShapeError)):
        run_query(settings.analyst_dsn, settings.schema, ESCAPES[name], "10s")
    assert not os.path.exists(PWNED)
    assert query(settings, "SELECT count(*) FROM article_ids")[0][0] == 0
    admin = connect(settings.dsn, settings.schema)
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT rolconfig FROM pg_roles WHERE rolname = %s", (ANALYST_ROLE,))
            config = cur.fetchone()[0] or []
    finally:
        admin.close()
    assert "default_transaction_read_only=on" in config


def test_the_analyst_can_read_and_finsent_sql_shows_it(settings):
    assert run_query(settings.analyst_dsn, settings.schema, "SELECT count(*) FROM articles")[1] == [(0,)]
    res = finsent(settings, "sql", "SELECT count(*) AS n FROM articles")
    assert res.returncode == 0 and "(1 row)" in res.stdout, res.stderr


def test_analyst_sessions_have_timeouts_and_a_connection_limit(settings):
    _cols, rows = run_query(settings.analyst_dsn, settings.schema,
                           "SELECT current_setting('idle_in_transaction_session_timeout'), "
                           "current_setting('idle_session_timeout'), "
                           "(SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user), "
                           "(SELECT rolconfig FROM pg_roles WHERE rolname = current_user)")
    idle_tx, idle, limit, config = rows[0]
    assert idle_tx not in ("0", "0ms") and idle not in ("0", "0ms")
    assert 0 < limit <= 50
    assert any(c.startswith("statement_timeout=") for c in config)
    # a runaway query is cut by the timeout `finsent sql` sets (and the role's own default)
    res = finsent(settings, "sql", "--timeout", "1s", "SELECT pg_sleep(30)")
    assert res.returncode == 1 and "57014" in res.stderr, res.stderr


DIRECT = {  # what a psql login as the analyst may try after `SET default_transaction_read_only = off`
    "temp table": "CREATE TEMP TABLE t AS SELECT 1 AS x",
    "temp function": "CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "lo_create": "SELECT lo_create(0)",
    "lo_creat": "SELECT lo_creat(-1)",
    "lo_from_bytea": "SELECT lo_from_bytea(0, 'x')",
    "delete": "DELETE FROM articles",
    "insert": "INSERT INTO article_ids (id, published_at) VALUES ('x', now())",
    "partition function": "SELECT ensure_article_partition(now() + interval '7 years')",
    "create in the schema": "CREATE TABLE x (a int)",
    "connection limit": "ALTER ROLE finsent_analyst CONNECTION LIMIT -1",
    "grant itself": "GRANT finsent_writer TO finsent_analyst",
}


@pytest.mark.parametrize("name", list(DIRECT))
def test_a_direct_analyst_login_with_read_only_off_still_cannot_write(settings, name):
    conn = psycopg2.connect(settings.analyst_dsn, options=f"-c search_path={settings.schema}")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET default_transaction_read_only = off")
            with pytest.raises(psycopg2.Error) as exc:
                cur.execute(DIRECT[name])
            assert exc.value.pgcode == "42501", exc.value  # permission denied, not read-only
    finally:
        conn.close()
