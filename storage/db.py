"""Connection helpers shared by the storage modules.

Every connection opened here runs with ``TimeZone = UTC`` and a search_path
that selects one finsent schema (``"<schema>", pg_temp``), so the same SQL
serves the live schema and any replay schema.  Nothing here ever prints or
logs a password: use :func:`redact` for anything that names a database.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

import psycopg2
import psycopg2.errorcodes
import psycopg2.extensions
import tenacity
from psycopg2 import sql
from tenacity.stop import stop_base

from stream.base.config import SCHEMA_PATTERN
from stream.base.errors import UserError
from stream.base.redact import redact as redact, scrub as scrub  # re-exported: storage's messages use them

WRITER_ROLE = "finsent_writer"
ANALYST_ROLE = "finsent_analyst"

T = TypeVar("T")
# psycopg2's connection and cursor: Any to mypy until its stubs (types-psycopg2) are pinned, but named,
# so that the signatures say what they take and become checked when the stubs come.
PgConnection: TypeAlias = psycopg2.extensions.connection
PgCursor: TypeAlias = psycopg2.extensions.cursor
_SCHEMA_RE = re.compile(SCHEMA_PATTERN)


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
) -> PgConnection:
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


Params = Sequence[Any] | Mapping[str, Any] | None  # a query's parameters, as psycopg2 takes them


def fetch_all(dsn: str, schema: str, query: str, params: Params = None) -> list[tuple[Any, ...]]:
    """One query on a short-lived connection to ``schema`` (scripts, the demo, tests)."""
    conn = connect(dsn, schema)
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            rows: list[tuple[Any, ...]] = cur.fetchall()
            return rows
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


# ---------------------------------------------------------------------------- one connection, retried transactions
class LazyConnection:
    """One connection, opened on first use and opened again after :meth:`drop` (or once the server
    closed it).  ``opener`` opens it (usually a :func:`connect` call with the caller's role and
    application name) and decides what a refusal raises: a psycopg2 connection error is retried by
    :func:`transaction`, a :class:`UserError` is not."""

    def __init__(self, opener: Callable[[], PgConnection]) -> None:
        self._opener = opener
        self._conn: PgConnection | None = None

    def get(self) -> PgConnection:
        if self._conn is None or self._conn.closed:
            self._conn = self._opener()
        return self._conn

    @property
    def is_open(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def drop(self) -> None:
        """Close the connection (errors ignored: it may be broken already); the next :meth:`get` opens a new one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass

    close = drop


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: waits ``initial_s``, then twice as long each time, at most ``max_s``.

    ``attempts``: tries in all (``None``: no limit); ``deadline_s``: give up instead of waiting past
    this many seconds after the first try (``None``: no deadline).
    """

    attempts: int | None = None
    deadline_s: float | None = None
    initial_s: float = 0.2
    max_s: float = 10.0

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th retried failure (1, 2, ...)."""
        return min(self.max_s, self.initial_s * 2.0 ** max(0, failures - 1))


@dataclass
class Attempted(Generic[T]):
    value: T
    attempts: int  # tries made (1 = no retry)


def retry_call(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    retryable: Callable[[BaseException], bool],
    on_retry: Callable[[BaseException, int, float], None] | None = None,
    give_up: Callable[[BaseException, int, float], Any] | None = None,
    retry_now: Callable[[BaseException], bool] | None = None,
    stop_event: threading.Event | None = None,
    sleep: Callable[[float], Any] = time.sleep,
) -> Attempted[T]:
    """Call ``fn`` until it returns, retrying the errors ``retryable`` accepts with ``policy``'s backoff.

    ``on_retry(exc, attempt, delay)`` runs before each wait (log there, with the DSN redacted).
    ``retry_now(exc)``: errors retried at once, without a wait and without growing the backoff.
    When the policy (or ``stop_event``) ends the retries, ``give_up(exc, attempts, elapsed_s)`` is
    called and its result returned (it may raise instead); without it the last error is raised.
    An error that is not retryable is raised as it is.
    """
    failures = 0
    now = False  # the last error is one of retry_now's (asked once per error: it may keep state)
    started = time.monotonic()

    def should_retry(exc: BaseException) -> bool:
        nonlocal now
        now = retry_now is not None and bool(retry_now(exc))
        return now or retryable(exc)

    def wait(rs: tenacity.RetryCallState) -> float:
        nonlocal failures
        if now:
            return 0.0
        failures += 1
        return policy.delay(failures)

    stop: stop_base = tenacity.stop_never
    if policy.attempts is not None:
        stop = stop | tenacity.stop_after_attempt(policy.attempts)
    if policy.deadline_s is not None:
        stop = stop | tenacity.stop_before_delay(policy.deadline_s)
    if stop_event is not None:
        stop = stop | tenacity.stop_when_event_set(stop_event)

    def before_sleep(rs: tenacity.RetryCallState) -> None:
        if on_retry is not None and rs.upcoming_sleep > 0:
            on_retry(_failure(rs), rs.attempt_number, rs.upcoming_sleep)

    def stopped(rs: tenacity.RetryCallState) -> Any:
        exc = _failure(rs)
        if give_up is None:
            raise exc
        return give_up(exc, rs.attempt_number, time.monotonic() - started)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(should_retry),
        wait=wait,
        stop=stop,
        sleep=lambda s: sleep(s) if s > 0 else None,
        before_sleep=before_sleep,
        retry_error_callback=stopped,
        reraise=True,
    )
    attempts = 0

    def counted() -> T:
        nonlocal attempts
        attempts += 1
        return fn()

    value = retrying(counted)
    return Attempted(value, attempts)


def _failure(rs: tenacity.RetryCallState) -> BaseException:
    """The error of the try that just failed (tenacity calls these hooks only after a failure)."""
    exc = rs.outcome.exception() if rs.outcome is not None else None
    assert isinstance(exc, BaseException)
    return exc


def transaction(
    db: LazyConnection,
    body: Callable[[PgConnection], T],
    *,
    policy: RetryPolicy,
    on_retry: Callable[[BaseException, int, float], None] | None = None,
    give_up: Callable[[BaseException, int, float], Any] | None = None,
    retry_now: Callable[[BaseException], bool] | None = None,
    sleep: Callable[[float], Any] = time.sleep,
) -> Attempted[T]:
    """Run ``body(conn)`` and COMMIT, as one transaction on ``db``'s connection, retried as a whole.

    A failed try is rolled back; after a connection error (:func:`is_connection_error`) the
    connection is dropped and the next try opens a fresh one.  Transient errors
    (:func:`is_transient`: connection lost, deadlock, serialization failure) are retried with
    ``policy``; any other error is raised at once.  See :func:`retry_call` for the hooks.
    """

    def attempt() -> T:
        conn = db.get()
        try:
            value = body(conn)
            conn.commit()
            return value
        except BaseException as exc:
            if not conn.closed:
                try:
                    conn.rollback()
                except psycopg2.Error:
                    pass
            if conn.closed or (isinstance(exc, psycopg2.Error) and is_connection_error(exc)):
                db.drop()
            raise

    return retry_call(
        attempt,
        policy=policy,
        retryable=lambda e: isinstance(e, psycopg2.Error) and is_transient(e),
        on_retry=on_retry,
        give_up=give_up,
        retry_now=retry_now,
        sleep=sleep,
    )
