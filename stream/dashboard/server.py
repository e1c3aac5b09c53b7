"""The dashboard's web application (Starlette): pages, JSON API under ``/api/``, live alerts.

``create_app(settings)`` builds it for ``settings.schema``; ``finsent dashboard`` serves it with
uvicorn on 127.0.0.1.  Every database connection is the read-only ``finsent_analyst`` role
(``settings.analyst_dsn``) in a read-only session with a statement timeout; the app refuses to
start when that login could write.  Only GET (and HEAD) routes exist.

Live alerts: :class:`AlertHub` holds one connection that ``LISTEN``\\s on the channel the alert
service notifies on commit (``finsent_alerts``, payload = schema) and, as a safety net for alerts
stored without a notification (replays without ``--notify`` are stored silently), looks for new
rows every ``poll_s`` seconds.  New rows go to every open ``/api/alerts/stream`` (server-sent
events; the browser's EventSource reconnects with ``Last-Event-ID`` and misses nothing).
"""

from __future__ import annotations

import asyncio
import logging
import select
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from alerts.notifier import load_targets
from storage import dashboard as q
from storage.alerts import listen
from storage.db import LazyConnection, RetryPolicy, check_schema, connect, first_line, is_connection_error, retry_call
from stream.base.errors import UserError
from stream.dashboard import api, pages, params as P
from stream.dashboard.api import MAX_STREAMS  # noqa: F401 - where it was
from stream.dashboard.pages import plotly_js  # noqa: F401 - where it was
from stream.dashboard.responses import Json, dumps  # noqa: F401 - where they were
from stream.dashboard.state import DashboardState

log = logging.getLogger("finsent.dashboard")

HERE = Path(__file__).resolve().parent
DEFAULT_PORT = 18080
STATEMENT_TIMEOUT_MS = 5000
MAX_IDLE_S = 600.0  # pooled analyst connections older than this are replaced (the role has idle_session_timeout 30min)
LISTEN_RETRY = RetryPolicy(initial_s=1.0, max_s=30.0)  # the alert listener after a database error
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


# --------------------------------------------------------------------------- connections
class ReadPool:
    """A few read-only analyst connections on one schema, handed out one per request thread."""

    def __init__(self, dsn: str, schema: str, size: int = 6, timeout_ms: int = STATEMENT_TIMEOUT_MS):
        self.dsn, self.schema, self.size, self.timeout_ms = dsn, schema, size, timeout_ms
        self._idle: list = []  # (connection, monotonic time it was last returned)
        self.max_idle_s = MAX_IDLE_S
        self._open = 0
        self._cv = threading.Condition()

    def _new(self):
        return connect(self.dsn, self.schema, readonly=True, statement_timeout_ms=self.timeout_ms,
                       application_name="finsent-dashboard", connect_timeout=5)

    @contextmanager
    def cursor(self):
        with self._cv:
            while not self._idle and self._open >= self.size:
                if not self._cv.wait(timeout=10):
                    raise psycopg2.OperationalError("no free database connection (dashboard pool busy)")
            conn = None
            while self._idle and conn is None:
                conn, last_used = self._idle.pop()
                if time.monotonic() - last_used > self.max_idle_s or conn.closed:
                    # the server ends idle analyst sessions (idle_session_timeout): never hand one out
                    if not conn.closed:
                        conn.close()
                    conn = None
                    self._open -= 1
            if conn is None:
                self._open += 1
        broken = False
        try:
            if conn is None:
                try:
                    conn = self._new()
                except BaseException:
                    broken = True
                    raise
            with conn.cursor() as cur:
                yield cur
        except psycopg2.Error as exc:
            broken = broken or is_connection_error(exc)
            raise
        finally:
            with self._cv:
                if conn is not None and not broken and not conn.closed:
                    try:
                        conn.rollback()  # end the read-only transaction
                        self._idle.append((conn, time.monotonic()))
                    except psycopg2.Error:
                        broken = True
                if conn is None or broken or conn.closed:
                    self._open -= 1
                    if conn is not None and not conn.closed:
                        conn.close()
                self._cv.notify()

    def close(self) -> None:
        with self._cv:
            for c, _ in self._idle:
                c.close()
            self._open -= len(self._idle)
            self._idle.clear()


def check_read_only(cur) -> str:
    """The login's name; UserError if it may write any finsent table of the schema (or is a superuser)."""
    user, superuser = q.login(cur)
    if superuser:
        raise UserError(f"the dashboard's database login '{user}' is a superuser; it must be the read-only "
                        "finsent_analyst role (FINSENT_ANALYST_DATABASE_URL)")
    row = q.writable_table(cur)
    if row:
        raise UserError(f"the dashboard's database login '{user}' has {row[1]} on {row[0]}; it must be the "
                        "read-only finsent_analyst role")
    return user


# --------------------------------------------------------------------------- live alerts
class AlertHub:
    """LISTEN for new alerts of one schema (plus a slow poll) and fan them out to SSE subscribers."""

    def __init__(self, dsn: str, schema: str, poll_s: float = 5.0):
        self.dsn, self.schema, self.poll_s = dsn, schema, poll_s
        self._subs: set[asyncio.Queue] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_id = 0
        self.listening = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="finsent-dashboard-alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def subscribe(self) -> asyncio.Queue:
        qu: asyncio.Queue = asyncio.Queue(maxsize=1000)
        self._subs.add(qu)
        return qu

    def unsubscribe(self, qu: asyncio.Queue) -> None:
        self._subs.discard(qu)

    def _publish(self, rows: list[dict]) -> None:
        for qu in list(self._subs):
            for r in rows:
                try:
                    qu.put_nowait(r)
                except asyncio.QueueFull:  # a stalled client: it re-reads from the database on reconnect
                    pass

    def _listen(self):
        conn = connect(self.dsn, self.schema, autocommit=True, readonly=True,
                       statement_timeout_ms=STATEMENT_TIMEOUT_MS,
                       application_name="finsent-dashboard-listen", connect_timeout=5)
        try:
            with conn.cursor() as cur:
                listen(cur)
                if not self.last_id:
                    self.last_id = q.last_alert_id(cur)
        except BaseException:
            conn.close()
            raise
        return conn

    def _run(self) -> None:
        db = LazyConnection(self._listen)

        def one_round() -> None:
            if self._stop.is_set():
                return
            fresh = not db.is_open
            conn = db.get()
            if fresh:
                self.listening = True
                self._check(conn)  # whatever was stored while we were not listening
            deadline = time.monotonic() + self.poll_s
            woken = False
            while not self._stop.is_set() and time.monotonic() < deadline and not woken:
                ready, _, _ = select.select([conn], [], [], min(0.5, max(0.0, deadline - time.monotonic())))
                if ready:
                    conn.poll()
                    woken = any(n.payload == self.schema for n in conn.notifies)
                    conn.notifies.clear()
            if not self._stop.is_set():
                self._check(conn)

        def on_retry(exc: BaseException, attempt: int, delay: float) -> None:
            self.listening = False
            log.warning("dashboard: alert listener: %s; retrying", first_line(exc))
            db.drop()

        while not self._stop.is_set():
            retry_call(one_round, policy=LISTEN_RETRY, retryable=lambda e: isinstance(e, psycopg2.Error),
                       on_retry=on_retry, give_up=lambda exc, attempts, elapsed: None, stop_event=self._stop,
                       sleep=self._stop.wait)
        db.close()

    def _check(self, conn) -> None:
        with conn.cursor() as cur:
            rows = q.list_alerts(cur, None, None, None, None, limit=200, after_id=self.last_id)
        if rows:
            self.last_id = max(r["id"] for r in rows)
            if self._loop is not None and self._subs:
                self._loop.call_soon_threadsafe(self._publish, rows)


# --------------------------------------------------------------------------- the app
ROUTES = [
    Route("/", pages.overview),
    Route("/ticker/{symbol}", pages.ticker_page),
    Route("/topic/{name:path}", pages.topic_page),
    Route("/alert/{alert_id}", pages.alert_page),
    Route("/api/meta", api.api_meta),
    Route("/api/health", api.api_health),
    Route("/api/trends", api.api_trends),
    Route("/api/scopes", api.api_scopes),
    Route("/api/movers", api.api_movers),
    Route("/api/alerts", api.api_alerts),
    Route("/api/alerts/stream", api.api_alert_stream),
    Route("/api/alerts/{alert_id}", api.api_alert),
    Route("/api/articles", api.api_articles),
    Route("/api/feeds", api.api_feeds),
    Route("/static/vendor/plotly.min.js", pages.vendor_plotly),
    Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
]


@asynccontextmanager
async def lifespan(app: Starlette):
    dash: DashboardState = app.state.dash
    if dash.check_role:
        with dash.pool.cursor() as cur:
            dash.user = check_read_only(cur)
    dash.hub.start(asyncio.get_running_loop())
    try:
        yield
    finally:
        dash.hub.stop()
        dash.pool.close()


def create_app(settings, *, now: Callable[[], datetime] | None = None, poll_s: float = 5.0,
               check_role: bool = True) -> Starlette:
    """The app for ``settings.schema``: the routes of :mod:`.api` and :mod:`.pages` over one
    :class:`DashboardState` (``app.state.dash``)."""
    schema = check_schema(settings.schema)
    dsn = settings.analyst_dsn
    dash = DashboardState(settings=settings, schema=schema, pool=ReadPool(dsn, schema),
                          hub=AlertHub(dsn, schema, poll_s=poll_s),
                          templates=Jinja2Templates(directory=str(HERE / "templates")),
                          now=now or (lambda: datetime.now(UTC)), targets=_targets(settings),
                          check_role=check_role)
    app = Starlette(routes=ROUTES, lifespan=lifespan, middleware=[Middleware(ReadOnlyHeaders)],
                    exception_handlers={P.ParamError: pages.param_error, HTTPException: pages.http_error})
    app.state.dash = dash
    app.state.pool = dash.pool
    app.state.hub = dash.hub
    app.state.schema = schema
    return app


class ReadOnlyHeaders:
    """ASGI middleware: anything but GET/HEAD gets 405; every response gets security headers."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["method"] not in ("GET", "HEAD"):
            resp = Json({"error": "the dashboard is read-only: only GET is allowed"}, status_code=405,
                        headers={"Allow": "GET, HEAD"})
            return await resp(scope, receive, send)
        api = scope["path"].startswith("/api/")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                extra = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                         (b"referrer-policy", b"no-referrer")]
                if api:
                    extra.append((b"cache-control", b"no-store"))
                headers += [(k, v) for k, v in extra if k not in have]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _targets(settings) -> list:
    """The configured apprise targets (for per-target delivery status); none when they cannot load."""
    if not settings.alert_urls and not settings.alert_config:
        return []
    try:
        return load_targets(settings)
    except (UserError, ImportError) as exc:
        log.warning("dashboard: apprise targets not loaded (%s); delivery shown without per-target detail", exc)
        return []
