"""Both forms of FINSENT_DATABASE_URL against the real PostgreSQL: libpq's key=value pairs as well as a
URL, and a password from PGPASSWORD or a passfile; `finsent sql`, `status`, `db status` and the
dashboard (the analyst's connection is derived from either form)."""

from __future__ import annotations

import json
import os
from urllib.parse import quote

import httpx
from psycopg2.extensions import make_dsn

from stream.base.dsn import dsn_params
from stream.dashboard.serve import ServerThread
from stream.dashboard.server import create_app
from tests.integration.workers import finsent


def _server(pg) -> dict[str, str]:
    """host, port, dbname, user and password of the stack's superuser login."""
    params = dsn_params(pg.dsn)
    return {k: params[k] for k in ("host", "port", "dbname", "user", "password")}


def kv(pg, **change) -> str:
    params = {**_server(pg), **change}
    return make_dsn(**{k: v for k, v in params.items() if v is not None})


def test_finsent_sql_with_a_key_value_dsn(pg):
    """Issue 24: 'invalid dsn: invalid connection option "//finsent_analyst:...@/host"'."""
    s = pg.replace(database_url=kv(pg))
    res = finsent(s, "sql", "SELECT current_user AS who, count(*) AS n FROM articles")
    assert res.returncode == 0, res.stderr
    assert "finsent_analyst" in res.stdout and "(1 row)" in res.stdout
    res = finsent(s, "db", "status")
    assert res.returncode == 0 and f"schema:          {pg.schema}" in res.stdout, res.stderr


def test_status_json_with_a_key_value_dsn_masks_the_password(pg):
    s = pg.replace(database_url=kv(pg))
    st = json.loads(finsent(s, "status", "--json").stdout)
    assert st["postgres_ok"] and "password=***" in st["database_url"] and st["postgres_version"]
    assert f"password={_server(pg)['password']}" not in json.dumps(st)


def test_a_password_from_pgpassword(pg):
    """No password in the string: libpq reads PGPASSWORD for the pipeline's login; the analyst's derived
    login carries its own password (set by 'db upgrade')."""
    s = pg.replace(database_url=kv(pg, password=None))
    password = _server(pg)["password"]
    without = finsent(s, "db", "status", PGPASSWORD="")
    assert without.returncode == 2 and "no password supplied" in without.stderr, without.stderr  # it is needed
    res = finsent(s, "db", "status", PGPASSWORD=password)
    assert res.returncode == 0, res.stderr
    res = finsent(s, "sql", "SELECT current_user AS who", PGPASSWORD=password)
    assert res.returncode == 0 and "finsent_analyst" in res.stdout, res.stderr


def test_a_password_from_a_passfile(pg, tmp_path):
    srv = _server(pg)
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"{srv['host']}:{srv['port']}:{srv['dbname']}:{srv['user']}:{srv['password']}\n")
    os.chmod(passfile, 0o600)
    for dsn in (kv(pg, password=None, passfile=str(passfile)),
                f"postgresql://{srv['user']}@{srv['host']}:{srv['port']}/{srv['dbname']}?passfile={quote(str(passfile))}"):
        s = pg.replace(database_url=dsn)
        res = finsent(s, "db", "status", PGPASSWORD="")
        assert res.returncode == 0, (dsn, res.stderr)
        st = json.loads(finsent(s, "status", "--json", PGPASSWORD="").stdout)
        assert st["postgres_ok"], dsn
        res = finsent(s, "sql", "SELECT current_user AS who", PGPASSWORD="")
        assert res.returncode == 0 and "finsent_analyst" in res.stdout, res.stderr


def test_a_url_whose_password_is_a_query_parameter(pg):
    srv = _server(pg)
    s = pg.replace(database_url=f"postgresql://{srv['user']}@{srv['host']}:{srv['port']}/{srv['dbname']}"
                                f"?password={quote(srv['password'])}&application_name=t")
    res = finsent(s, "sql", "SELECT current_user AS who")  # the analyst's login drops the writer's password
    assert res.returncode == 0 and "finsent_analyst" in res.stdout, res.stderr


def test_the_dashboard_reads_through_a_key_value_dsn(pg):
    s = pg.replace(database_url=kv(pg))
    with ServerThread(create_app(s, poll_s=120)) as srv:
        with httpx.Client(base_url=srv.url, timeout=20) as client:
            health = client.get("/api/health")
            alerts = client.get("/api/alerts")
    assert health.status_code == 200 and alerts.status_code == 200, health.text
