"""Versioned schema migrations, roles and grants.

Migrations are the files ``storage/migrations/NNNN_name.sql``, numbered 1, 2,
3, ... without gaps.  :func:`upgrade` applies the ones a schema lacks, each in
its own transaction together with its row in ``schema_version``; running it
again is a no-op.  It refuses a schema whose recorded version is newer than
the files shipped with this code.  After the files it makes sure the two
roles exist and holds their grants on the schema:

* ``finsent_writer`` (LOGIN): SELECT/INSERT/UPDATE on the tables, EXECUTE on
  the partition function; the pipeline writes as this role.
* ``finsent_analyst`` (LOGIN, read-only by default): USAGE on the schema and
  SELECT on every table and view, present and future (default privileges, so
  new monthly partitions are readable too); nothing else.

Roles are cluster-wide, grants are per schema: a replay schema
(``--schema NAME``) gets the same grants.  Passwords are sent to the server
only as SCRAM-SHA-256 verifiers, never in clear text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg2
from psycopg2 import sql

from storage.db import ANALYST_ROLE, WRITER_ROLE, PgConnection, PgCursor, check_schema, connect, first_line, redact
from storage.maintenance import list_partitions
from stream.base.config import load_settings
from stream.base.errors import UserError

if TYPE_CHECKING:
    from stream.base.settings import Settings

log = logging.getLogger("finsent.storage.migrate")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "schema_version"
_FILE_RE = re.compile(r"^(\d{4})_([A-Za-z0-9_]+)\.sql$")
_LOCK_KEY = 0x66696E73  # pg_advisory_lock key ("fins"): one migration at a time per database
MONTHS_AHEAD = 2  # partitions created ahead of the current month


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @cached_property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @cached_property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()[:16]

    @property
    def filename(self) -> str:
        return self.path.name


def available(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The shipped migrations in order; numbering must be 1..N without gaps."""
    found: dict[int, Migration] = {}
    for p in sorted(directory.glob("*.sql")):
        m = _FILE_RE.match(p.name)
        if not m:
            raise UserError(f"migration file {p.name} is not named NNNN_name.sql")
        v = int(m.group(1))
        if v in found:
            raise UserError(f"two migrations with version {v}: {found[v].path.name} and {p.name}")
        found[v] = Migration(v, m.group(2), p)
    out = [found[v] for v in sorted(found)]
    for i, mig in enumerate(out, start=1):
        if mig.version != i:
            raise UserError(f"migration {i:04d} is missing (found {mig.path.name} after it): the files must be numbered without gaps")
    return out


def code_version() -> int:
    ms = available()
    return ms[-1].version if ms else 0


# --------------------------------------------------------------------------- passwords
def scram_verifier(password: str, iterations: int = 4096) -> str:
    """A SCRAM-SHA-256 verifier as stored in pg_authid (so no clear text reaches the server)."""
    salt = os.urandom(16)
    pw = unicodedata.normalize("NFKC", password).encode("utf-8")
    salted = hashlib.pbkdf2_hmac("sha256", pw, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _default_passwords() -> tuple[str, str]:
    s = load_settings()
    return s.writer_password.get_secret_value(), s.analyst_password.get_secret_value()


# --------------------------------------------------------------------------- helpers
def _connect_admin(dsn: str, schema: str) -> PgConnection:
    try:
        return connect(dsn, schema, autocommit=True, application_name="finsent-migrate")
    except psycopg2.Error as exc:
        raise UserError(f"cannot connect to {redact(dsn)}: {first_line(exc)}") from None


def _applied(cur: PgCursor, schema: str) -> dict[int, tuple[str, str]]:
    cur.execute("SELECT to_regclass(%s)", (f'"{schema}".{VERSION_TABLE}',))
    if cur.fetchone()[0] is None:
        return {}
    cur.execute(sql.SQL("SELECT version, name, checksum FROM {}.{} ORDER BY version").format(
        sql.Identifier(schema), sql.Identifier(VERSION_TABLE)))
    return {v: (n, c) for v, n, c in cur.fetchall()}


def current_version(dsn: str, schema: str = "public") -> int:
    """The highest migration version recorded in ``schema`` (0: none, or no such schema)."""
    check_schema(schema)
    conn = _connect_admin(dsn, schema)
    try:
        with conn.cursor() as cur:
            applied = _applied(cur, schema)
        return max(applied) if applied else 0
    finally:
        conn.close()


def _role_exists(cur: PgCursor, role: str) -> bool:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    return cur.fetchone() is not None


ANALYST_SESSION_LIMITS = {  # ALTER ROLE finsent_analyst SET ...
    "statement_timeout": "60s",
    "idle_in_transaction_session_timeout": "60s",
    "idle_session_timeout": "30min",
}
ANALYST_CONNECTION_LIMIT = 32


def ensure_roles(cur: PgCursor, writer_password: str | None, analyst_password: str | None, *, set_passwords: bool) -> None:
    """Create the two LOGIN roles if missing; with ``set_passwords`` also reset their passwords."""
    for role, password in ((WRITER_ROLE, writer_password), (ANALYST_ROLE, analyst_password)):
        ident = sql.Identifier(role)
        if not _role_exists(cur, role):
            try:
                cur.execute("SAVEPOINT mkrole")
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %s").format(ident),
                            (scram_verifier(password or role),))
                cur.execute("RELEASE SAVEPOINT mkrole")
                log.info("created role %s", role)
            except psycopg2.errors.DuplicateObject:  # created concurrently (other database of the cluster)
                cur.execute("ROLLBACK TO SAVEPOINT mkrole")
            except psycopg2.errors.InsufficientPrivilege:
                raise UserError(
                    f"the database user cannot create role {role}: run 'finsent db upgrade' once with a "
                    "user that has CREATEROLE (or create the roles finsent_writer and finsent_analyst yourself)"
                ) from None
        elif set_passwords and password is not None:
            try:
                cur.execute("SAVEPOINT pw")
                cur.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(ident), (scram_verifier(password),))
                cur.execute("RELEASE SAVEPOINT pw")
            except psycopg2.errors.InsufficientPrivilege:
                cur.execute("ROLLBACK TO SAVEPOINT pw")
                log.warning("cannot set the password of role %s (insufficient privilege); left unchanged", role)
    # The analyst's sessions are read-only unless they ask otherwise (they hold no write grant anyway)
    # and in UTC, the time zone of the buckets.
    try:
        cur.execute("SAVEPOINT ro")
        cur.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(sql.Identifier(ANALYST_ROLE)))
        cur.execute(sql.SQL("ALTER ROLE {} SET TimeZone = 'UTC'").format(sql.Identifier(ANALYST_ROLE)))
        cur.execute("RELEASE SAVEPOINT ro")
    except psycopg2.errors.InsufficientPrivilege:
        cur.execute("ROLLBACK TO SAVEPOINT ro")
    # Bounded analyst sessions (`finsent sql`, the dashboard, psql): per-role timeouts (defaults a
    # session may lower or raise itself) and a connection limit (it may not change that).
    try:
        cur.execute("SAVEPOINT limits")
        for name, value in ANALYST_SESSION_LIMITS.items():
            cur.execute(sql.SQL("ALTER ROLE {} SET {} = %s").format(sql.Identifier(ANALYST_ROLE), sql.Identifier(name)),
                        (value,))
        cur.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT %s").format(sql.Identifier(ANALYST_ROLE)),
                    (ANALYST_CONNECTION_LIMIT,))
        cur.execute("RELEASE SAVEPOINT limits")
    except psycopg2.Error as exc:  # no CREATEROLE, or a server before 14 (idle_session_timeout)
        cur.execute("ROLLBACK TO SAVEPOINT limits")
        log.warning("cannot set the session limits of role %s: %s", ANALYST_ROLE, first_line(exc))
    # SET ROLE finsent_writer needs membership unless we are superuser.
    cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if not cur.fetchone()[0]:
        try:
            cur.execute("SAVEPOINT mem")
            cur.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(WRITER_ROLE)))
            cur.execute("RELEASE SAVEPOINT mem")
        except psycopg2.Error:
            cur.execute("ROLLBACK TO SAVEPOINT mem")


def apply_grants(cur: PgCursor, schema: str) -> None:
    """(Re)apply the per-schema grants; idempotent."""
    p = {"s": sql.Identifier(schema), "w": sql.Identifier(WRITER_ROLE), "a": sql.Identifier(ANALYST_ROLE),
         "v": sql.Identifier(VERSION_TABLE)}
    for stmt in (
        "GRANT USAGE ON SCHEMA {s} TO {w}, {a}",
        "GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA {s} TO {w}",
        "REVOKE INSERT, UPDATE ON {s}.{v} FROM {w}",
        "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {w}",
        "GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {a}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT, INSERT, UPDATE ON TABLES TO {w}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT USAGE, SELECT ON SEQUENCES TO {w}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT ON TABLES TO {a}",
        "GRANT EXECUTE ON FUNCTION {s}.ensure_article_partition(timestamptz) TO {w}",
    ):
        cur.execute(sql.SQL(stmt).format(**p))


def ensure_partitions_ahead(cur: PgCursor, months_ahead: int = MONTHS_AHEAD, now: datetime | None = None) -> list[str]:
    """Create the partitions of the current month and ``months_ahead`` following ones."""
    now = now or datetime.now(UTC)
    names = []
    for n in range(months_ahead + 1):
        cur.execute("SELECT ensure_article_partition(%s::timestamptz + make_interval(months => %s))", (now, n))
        names.append(cur.fetchone()[0])
    return names


# --------------------------------------------------------------------------- upgrade
def upgrade(
    dsn: str,
    schema: str = "public",
    *,
    writer_password: str | None = None,
    analyst_password: str | None = None,
    months_ahead: int = MONTHS_AHEAD,
) -> int:
    """Bring ``schema`` to the code's version; returns the version now applied.

    Passwords: when given, the roles' passwords are (re)set to them; when not,
    missing roles are created with the configured passwords (``Settings``) and
    existing roles keep theirs.
    """
    check_schema(schema)
    migrations = available()
    latest = migrations[-1].version if migrations else 0
    set_passwords = writer_password is not None or analyst_password is not None
    if writer_password is None or analyst_password is None:
        dw, da = _default_passwords()
        writer_password = dw if writer_password is None else writer_password
        analyst_password = da if analyst_password is None else analyst_password

    conn = _connect_admin(dsn, schema)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
            try:
                cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
                cur.execute(sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.{} ("
                    " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now(), applied_by text NOT NULL DEFAULT current_user)"
                ).format(sql.Identifier(schema), sql.Identifier(VERSION_TABLE)))
                applied = _applied(cur, schema)
                newest = max(applied) if applied else 0
                if newest > latest:
                    raise UserError(
                        f"schema '{schema}' is at migration version {newest}, newer than this finsent "
                        f"(knows up to {latest}): upgrade finsent before using this database"
                    )
                missing = [v for v in range(1, newest + 1) if v not in applied]
                if missing:
                    raise UserError(f"schema '{schema}' records version {newest} but lacks {missing}: fix schema_version by hand")
                for m in migrations:
                    if m.version in applied:
                        if applied[m.version][1] != m.checksum:
                            log.warning("migration %s changed since it was applied to schema %s (ignored)", m.filename, schema)
                        continue
                    _apply_one(conn, cur, schema, m)
                conn.autocommit = False
                try:
                    ensure_roles(cur, writer_password, analyst_password, set_passwords=set_passwords)
                    apply_grants(cur, schema)
                    ensure_partitions_ahead(cur, months_ahead)
                    conn.commit()
                except BaseException:
                    conn.rollback()
                    raise
                finally:
                    conn.autocommit = True
            finally:
                if not conn.closed:
                    cur.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
        return latest
    except psycopg2.Error as exc:
        raise UserError(f"database upgrade of schema '{schema}' failed: {first_line(exc)}") from None
    finally:
        conn.close()


def upgrade_to_settings(settings: Settings) -> int:
    """:func:`upgrade` of the configured schema, setting the roles' passwords to the configured ones (what
    ``finsent up`` and a starting worker do)."""
    return upgrade(settings.dsn, schema=settings.schema,
                   writer_password=settings.writer_password.get_secret_value(),
                   analyst_password=settings.analyst_password.get_secret_value())


def _apply_one(conn: PgConnection, cur: PgCursor, schema: str, m: Migration) -> None:
    conn.autocommit = False
    try:
        cur.execute(m.sql)
        cur.execute(
            sql.SQL("INSERT INTO {}.{} (version, name, checksum) VALUES (%s, %s, %s)").format(
                sql.Identifier(schema), sql.Identifier(VERSION_TABLE)),
            (m.version, m.name, m.checksum),
        )
        conn.commit()
        log.info("schema %s: applied migration %s", schema, m.filename)
    except psycopg2.Error as exc:
        conn.rollback()
        raise UserError(f"migration {m.filename} failed on schema '{schema}': {first_line(exc)}") from None
    finally:
        conn.autocommit = True


def status(dsn: str, schema: str = "public") -> dict[str, Any]:
    """Applied and pending migrations of ``schema`` and its article partitions."""
    check_schema(schema)
    migrations = available()
    conn = _connect_admin(dsn, schema)
    try:
        with conn.cursor() as cur:
            applied_rows = []
            cur.execute("SELECT to_regclass(%s)", (f'"{schema}".{VERSION_TABLE}',))
            if cur.fetchone()[0] is not None:
                cur.execute(sql.SQL("SELECT version, name, applied_at FROM {}.{} ORDER BY version").format(
                    sql.Identifier(schema), sql.Identifier(VERSION_TABLE)))
                applied_rows = cur.fetchall()
            parts = list_partitions(cur, schema)
        versions = {r[0] for r in applied_rows}
        return {
            "schema": schema,
            "version": max(versions) if versions else 0,
            "code_version": migrations[-1].version if migrations else 0,
            "applied": [{"version": v, "name": n, "applied_at": a} for v, n, a in applied_rows],
            "pending": [m.filename for m in migrations if m.version not in versions],
            "partitions": parts,
        }
    finally:
        conn.close()


def drop_schema(dsn: str, schema: str) -> None:
    """Drop a schema and everything in it (the demo starts each run on a fresh one)."""
    check_schema(schema)
    conn = connect(dsn, autocommit=True, application_name="finsent-migrate")
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    finally:
        conn.close()
