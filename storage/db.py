"""Connection helpers shared by the storage modules.

Every connection opened here runs with ``TimeZone = UTC`` and a search_path
that selects one finsent schema (``"<schema>", pg_temp``), so the same SQL
serves the live schema and any replay schema.  Nothing here ever prints or
logs a password: use :func:`redact` for anything that names a database.
"""

from __future__ import annotations

import re

import psycopg2
import psycopg2.errorcodes
from psycopg2 import sql

from stream.base.config import redact_url
from stream.base.errors import UserError

WRITER_ROLE = "finsent_writer"
ANALYST_ROLE = "finsent_analyst"

_SCHEMA_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(dsn: str) -> str:
    """A DSN (URL or ``key=value`` string) with its password hidden."""
    if "://" in dsn:
        return redact_url(dsn)
    return _KV_PASSWORD.sub(r"\1***", dsn)


def scrub(text: str, *secrets: str | None, visible: str = "") -> str:
    """Remove secrets (passwords, full DSNs) from a message before showing it.

    Belt and braces: libpq and the server never echo passwords, but a message
    built from user input might.  A secret that also appears in ``visible``
    (e.g. the redacted URL, where a password equal to the user name shows
    anyway) or is shorter than 4 characters is left alone, so messages stay
    readable.
    """
    for s in sorted((s for s in secrets if s), key=len, reverse=True):
        if len(s) >= 4 and s not in visible:
            text = text.replace(s, "***")
    return text


def check_schema(schema: str) -> str:
    """Validate a schema name (plain identifier, so it is safe in file names and logs)."""
    if not isinstance(schema, str) or not _SCHEMA_RE.match(schema):
        raise UserError(
            f"invalid schema name {schema!r}: use letters, digits and underscores, "
            "starting with a letter or underscore (at most 63 characters)"
        )
    return schema


def first_line(exc: BaseException) -> str:
    """The first line of a database error, without libpq's trailing noise."""
    msg = getattr(exc, "pgerror", None) or str(exc) or exc.__class__.__name__
    lines = [ln.strip() for ln in str(msg).strip().splitlines() if ln.strip()]
    return lines[0] if lines else exc.__class__.__name__


def connect(
    dsn: str,
    schema: str = "public",
    *,
    role: str | None = None,
    autocommit: bool = False,
    readonly: bool = False,
    statement_timeout_ms: int | None = None,
    application_name: str = "finsent",
    connect_timeout: int = 10,
):
    """Open a connection to ``dsn`` with search_path on ``schema``.

    ``role``: ``SET ROLE`` to it after connecting (skipped when the login is
    already that role).  Raises psycopg2 errors; callers turn them into user
    errors or retries.
    """
    check_schema(schema)
    conn = psycopg2.connect(dsn, connect_timeout=connect_timeout, application_name=application_name)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET TimeZone = 'UTC'")
            cur.execute(sql.SQL("SET search_path = {}, pg_temp").format(sql.Identifier(schema)))
            if statement_timeout_ms is not None:
                cur.execute("SET statement_timeout = %s", (int(statement_timeout_ms),))
            if role:
                cur.execute("SELECT current_user")
                if cur.fetchone()[0] != role:
                    cur.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        if readonly:
            conn.set_session(readonly=True)
        conn.autocommit = autocommit
    except BaseException:
        conn.close()
        raise
    return conn


def fetch_all(dsn: str, schema: str, query: str, params=None) -> list[tuple]:
    """One query on a short-lived connection to ``schema`` (scripts, the demo, tests)."""
    conn = connect(dsn, schema)
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()
    finally:
        conn.close()


def is_connection_error(exc: BaseException) -> bool:
    """True for errors after which the connection is unusable (server gone, restart)."""
    if isinstance(exc, psycopg2.InterfaceError):
        return True
    if isinstance(exc, psycopg2.OperationalError):
        code = getattr(exc, "pgcode", None)
        if code is None:  # libpq-level: no connection, lost connection
            return True
        # admin shutdown, crash shutdown, cannot connect now, connection failures
        return code.startswith("08") or code in ("57P01", "57P02", "57P03")
    return False


def is_transient(exc: BaseException) -> bool:
    """Connection errors plus deadlocks / serialization failures (retry the transaction)."""
    if is_connection_error(exc):
        return True
    return getattr(exc, "pgcode", None) in (
        psycopg2.errorcodes.DEADLOCK_DETECTED,
        psycopg2.errorcodes.SERIALIZATION_FAILURE,
    )


def is_record_error(exc: BaseException) -> bool:
    """True when a batch write failed because of the data it carried (a row the database or the
    encoder refuses), not the connection or the schema: the batch can be bisected to find the row.

    SQLSTATE classes 22 (data exception: bad text, out of range, invalid JSON), 23 (integrity)
    and 54 (program limit: e.g. an index row too large); client-side encoding errors
    (``ValueError`` for U+0000, ``UnicodeEncodeError``, ``TypeError``) too.
    """
    if isinstance(exc, psycopg2.Error):
        if is_transient(exc):
            return False
        return (getattr(exc, "pgcode", None) or "")[:2] in ("22", "23", "54")
    return isinstance(exc, (ValueError, TypeError, OverflowError, RecursionError)) and not isinstance(exc, UserError)


def is_fatal_connect_error(exc: BaseException) -> bool:
    """Connection refusals that retrying will not fix (bad password, unknown role or database)."""
    msg = str(exc).lower()
    return any(
        s in msg
        for s in (
            "password authentication failed",
            "authentication failed",
            "no password supplied",
            "does not exist",  # role / database
            "no pg_hba.conf entry",
            "invalid dsn",
            "invalid connection option",
        )
    )
