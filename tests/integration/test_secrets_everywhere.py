"""No command prints or logs a configured secret: the output and the (debug) logs of every command's
--help, status, sql (success and error paths), db upgrade/status, alerts list/test, a classify error, a
worker that cannot connect and a wrong setting are scanned for every secret of one settings object that
holds them all: the pipeline's connection in key=value form and the analyst's as a URL (and the other
way round), the role passwords, the local stack's password and apprise URLs with a password, a header
token and a path token."""

from __future__ import annotations

import argparse
import uuid

import psycopg2
import pytest
from psycopg2 import sql as pgsql
from psycopg2.extensions import make_dsn

from stream.base.dsn import dsn_params
from stream.cli import build_parser
from stream.dashboard.serve import free_port
from tests.integration.workers import finsent

DB_PW = "Db-Secret-5t1q"  # the pipeline's login: wrong, so every command writing the database takes its error path
ANALYST_LOGIN_PW = "An-Login-Secret-8m4"  # analyst_database_url: a login role made for this test (works)
WRITER_PW = "Writer-Secret-2k9"
ANALYST_PW = "Analyst-Secret-6j3"
STACK_PW = "Stack-Secret-0p7"
APPRISE_PW = "Apprise-Pw-Secret-4h2"
APPRISE_TOKEN = "Apprise-Tok-Secret-1x8"
APPRISE_PATH = "Apprise-PathTok-Secret-9z5"
SECRETS = (DB_PW, ANALYST_LOGIN_PW, WRITER_PW, ANALYST_PW, STACK_PW, APPRISE_PW, APPRISE_TOKEN, APPRISE_PATH)


def _help_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path + ("--help",)
    for action in parser._actions:  # argparse has no public walk of its sub-parsers
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _help_commands(sub, path + (name,))


@pytest.fixture
def analyst_login(pg):
    """A login role with a secret password and the analyst's rights, dropped afterwards."""
    role = f"t_sec_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(pg.dsn)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(pgsql.SQL("CREATE ROLE {} LOGIN PASSWORD %s IN ROLE finsent_analyst").format(
                pgsql.Identifier(role)), (ANALYST_LOGIN_PW,))
        yield role
    finally:
        with admin.cursor() as cur:
            cur.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(role)))
        admin.close()


def secret_settings(pg, role: str, pipeline_form: str):
    srv = dsn_params(pg.dsn)
    host, port, db = srv["host"], srv["port"], srv["dbname"]
    if pipeline_form == "kv":
        database_url = make_dsn(host=host, port=port, dbname=db, user=srv["user"], password=DB_PW)
        analyst_url = f"postgresql://{role}:{ANALYST_LOGIN_PW}@{host}:{port}/{db}"
    else:
        database_url = f"postgresql://{srv['user']}:{DB_PW}@{host}:{port}/{db}"
        analyst_url = make_dsn(host=host, port=port, dbname=db, user=role, password=ANALYST_LOGIN_PW)
    hook = free_port()  # nothing listens: delivery fails
    return pg.replace(
        database_url=database_url, analyst_database_url=analyst_url, writer_password=WRITER_PW,
        analyst_password=ANALYST_PW, stack=pg.stack.replace(postgres_password=STACK_PW),
        alert_urls=(f"json://alice:{APPRISE_PW}@127.0.0.1:{hook}/hook?-X-Api-Token={APPRISE_TOKEN}",
                    f"json://127.0.0.1:{hook}/{APPRISE_PATH}"))


def scan(settings, runs: dict[str, tuple[tuple[str, ...], dict[str, str], set[int]]]) -> dict[str, str]:
    texts = {}
    for name, (argv, env, codes) in runs.items():
        res = finsent(settings, *argv, timeout=180, **env)
        text = res.stdout + res.stderr
        assert res.returncode in codes, f"{name}: exit {res.returncode}\n{text[-3000:]}"
        texts[name] = text
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into {name}:\n{text[-3000:]}"
    return texts


def test_no_command_shows_a_secret(pg, analyst_login, tmp_path):
    s = secret_settings(pg, analyst_login, "kv")
    runs = {" ".join(argv): (argv, {}, {0}) for argv in _help_commands(build_parser(None))}
    runs.update({
        "status --json": (("status", "--json"), {}, {1}),
        "status": (("-v", "status"), {}, {1}),
        "sql": (("-v", "sql", "SELECT current_user AS who"), {}, {0}),
        "sql syntax error": (("sql", "SELEKT 1"), {}, {1}),
        "sql unknown column": (("sql", "SELECT no_such_column FROM articles"), {}, {1}),
        "sql timeout": (("sql", "--timeout", "1s", "SELECT pg_sleep(5)"), {}, {1}),
        "sql write refused": (("sql", "DELETE FROM articles"), {}, {1}),
        "sql empty": (("sql", " "), {}, {2}),
        "db upgrade": (("-v", "db", "upgrade"), {}, {2}),
        "db status": (("db", "status"), {}, {2}),
        "alerts list": (("-v", "alerts", "list"), {}, {2}),
        "alerts test": (("-v", "alerts", "test"), {}, {1, 2}),
        "classify error": (("classify", str(tmp_path / "missing.jsonl")), {}, {2}),
        "worker cannot connect": (("-v", "worker"), {}, {1, 2}),
        "wrong setting": (("status",), {"FINSENT_DATABASE_URL": f"host=x password={DB_PW} port"}, {2}),
        "wrong setting beside a secret": (("status",), {"FINSENT_PARTITIONS": "0"}, {2}),
    })
    texts = scan(s, runs)
    # the runs really went where they should (a scan of nothing would pass too)
    assert "password=***" in texts["status --json"] and '"postgres_ok": false' in texts["status --json"]
    assert analyst_login in texts["sql"] and "(1 row)" in texts["sql"]
    assert "password authentication failed" in texts["db upgrade"]
    assert "password authentication failed" in texts["worker cannot connect"]
    assert "FAILED" in texts["alerts test"] and "invalid FINSENT_DATABASE_URL='***'" in texts["wrong setting"]


def test_the_other_form_of_each_connection_string(pg, analyst_login):
    """The pipeline's login as a URL and the analyst's as key=value pairs."""
    s = secret_settings(pg, analyst_login, "url")
    texts = scan(s, {
        "status --json": (("status", "--json"), {}, {1}),
        "sql": (("-v", "sql", "SELECT current_user AS who"), {}, {0}),
        "sql unknown column": (("sql", "SELECT no_such_column FROM articles"), {}, {1}),
        "db upgrade": (("-v", "db", "upgrade"), {}, {2}),
        "worker cannot connect": (("-v", "worker"), {}, {1, 2}),
    })
    assert ":***@" in texts["status --json"] and analyst_login in texts["sql"]
    assert "password authentication failed" in texts["db upgrade"]
