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
import json
import logging
import select
import threading
import time
from contextlib import asynccontextmanager, contextmanager
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import psycopg2
from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from alerts.notifier import load_targets
from storage import dashboard as q
from storage.alerts import listen
from storage.db import LazyConnection, RetryPolicy, check_schema, connect, first_line, is_connection_error, retry_call
from storage.feeds import feed_health
from stream.dashboard import params as P
from stream.dashboard.health import broker_health
from stream.base.errors import UserError

log = logging.getLogger("finsent.dashboard")

HERE = Path(__file__).resolve().parent
DEFAULT_PORT = 18080
STATEMENT_TIMEOUT_MS = 5000
MAX_IDLE_S = 600.0  # pooled analyst connections older than this are replaced (the role has idle_session_timeout 30min)
MAX_STREAMS = 200  # open /api/alerts/stream connections
LISTEN_RETRY = RetryPolicy(initial_s=1.0, max_s=30.0)  # the alert listener after a database error
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def _json_default(o):
    if isinstance(o, datetime):
        return o.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(o, date):
        return o.isoformat()
    if isinstance(o, Decimal):
        return float(o)
    if isinstance(o, timedelta):
        return o.total_seconds()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def dumps(obj) -> str:
    return json.dumps(obj, default=_json_default, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class Json(JSONResponse):
    def render(self, content) -> bytes:
        return dumps(content).encode("utf-8")


def plotly_js() -> Path:
    """plotly.min.js as shipped inside the ``plotly`` PyPI package (nothing from a CDN)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


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
def create_app(settings, *, now: Callable[[], datetime] | None = None, poll_s: float = 5.0,
               check_role: bool = True) -> Starlette:
    schema = check_schema(settings.schema)
    dsn = settings.analyst_dsn
    now = now or (lambda: datetime.now(timezone.utc))
    pool = ReadPool(dsn, schema)
    hub = AlertHub(dsn, schema, poll_s=poll_s)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    health_cache: dict[str, Any] = {}
    targets = _targets(settings)
    state: dict[str, Any] = {"user": None}

    def db(fn):
        """Run ``fn(cur)`` on a pooled read-only connection; database trouble becomes 503 JSON."""
        try:
            with pool.cursor() as cur:
                return fn(cur)
        except psycopg2.errors.QueryCanceled:
            raise HTTPException(503, "the query took longer than the dashboard's statement timeout") from None
        except psycopg2.errors.UndefinedTable:
            raise HTTPException(503, f"schema '{schema}' has no finsent tables (finsent db upgrade --schema {schema})") from None
        except psycopg2.Error as exc:
            raise HTTPException(503, f"database error: {first_line(exc)}") from None

    # ----------------------------------------------------------------- API
    def api_meta(request: Request):
        P.check_known(request.query_params, ())
        ext = db(q.extent)
        return Json({"schema": schema, "now": now(), **ext, "ranges": list(P.RANGES),
                     "buckets": list(P.BUCKET_CHOICES), "scope_kinds": list(P.SCOPE_KINDS)})

    def api_trends(request: Request):
        qp = request.query_params
        P.check_known(qp, ("kind", "scope", "range", "since", "until", "bucket"))
        kind, scope = P.scope_param(qp)
        rng = P.time_range(qp, now())
        bucket, width = P.bucket_param(qp, rng)

        def run(cur):
            t = q.trend(cur, kind, scope, rng.since, rng.until, bucket, width, max_points=P.MAX_POINTS)
            t["alerts"] = q.scope_alerts(cur, kind, scope, t["since"], t["until"], limit=500)
            return t

        return Json({"kind": kind, "scope": scope, "bucket": bucket, "bucket_seconds": int(width.total_seconds()),
                     **db(run)})

    def api_scopes(request: Request):
        qp = request.query_params
        P.check_known(qp, ("kind", "range", "since", "until", "limit", "prefix"))
        kind = P.choice(qp, "kind", P.SCOPE_KINDS, "topic")
        limit = P.int_param(qp, "limit", 50, 1, 500)
        if qp.get("prefix") is not None:
            prefix = qp["prefix"].strip()
            if len(prefix) > 80:
                raise P.ParamError("prefix: at most 80 characters")
            return Json({"kind": kind, "scopes": db(lambda cur: q.find_scopes(cur, kind, prefix, limit))})
        rng = P.time_range(qp, now())
        return Json({"kind": kind, **db(lambda cur: q.scope_totals(cur, kind, rng.since, rng.until, limit))})

    def api_movers(request: Request):
        qp = request.query_params
        P.check_known(qp, ("range", "since", "until", "limit", "min_articles"))
        rng = P.time_range(qp, now())
        limit = P.int_param(qp, "limit", 10, 1, 200)
        min_articles = P.int_param(qp, "min_articles", 5, 1, 1_000_000)
        return Json(db(lambda cur: q.movers(cur, rng.since, rng.until, limit, min_articles)))

    def api_alerts(request: Request):
        qp = request.query_params
        P.check_known(qp, ("kind", "scope", "range", "since", "until", "limit", "after"))
        limit = P.int_param(qp, "limit", 50, 1, 500)
        kind = scope = None
        if qp.get("kind") is not None:
            kind, scope = P.scope_param(qp, required=False)
        elif qp.get("scope") is not None:
            raise P.ParamError("scope needs kind (ticker or topic)")
        rng = P.time_range(qp, now(), default="30d") if any(k in qp for k in ("range", "since", "until")) else None
        after = P.int_param(qp, "after", 0, 0, 2**63 - 1) if qp.get("after") is not None else None
        rows = db(lambda cur: q.list_alerts(cur, rng.since if rng else None, rng.until if rng else None,
                                            kind, scope or None, limit, after))
        return Json({"alerts": rows})

    def api_alert(request: Request):
        P.check_known(request.query_params, ())
        alert_id = P.positive_id(request.path_params["alert_id"])

        def run(cur):
            row = q.alert_scope(cur, alert_id)
            if row is None:
                return None
            ts = [{"key": t.key, "service": _service_name(t), "routes": t.routes(row[0], row[1])} for t in targets]
            return q.alert_detail(cur, alert_id, ts)

        out = db(run)
        if out is None:
            raise HTTPException(404, f"no alert {alert_id} in schema '{schema}'")
        return Json(out)

    def api_articles(request: Request):
        qp = request.query_params
        P.check_known(qp, ("kind", "scope", "range", "since", "until", "limit", "sentiment", "order"))
        kind, scope = P.scope_param(qp)
        rng = P.time_range(qp, now())
        limit = P.int_param(qp, "limit", 50, 1, 500)
        sentiment = P.choice(qp, "sentiment", P.SENTIMENTS, None)
        order = P.choice(qp, "order", ("newest", "negative"), "newest")
        rows = db(lambda cur: q.articles(cur, kind, scope, rng.since, rng.until, limit, sentiment, order))
        return Json({"kind": kind, "scope": scope, "since": rng.since, "until": rng.until, "articles": rows})

    def api_feeds(request: Request):
        P.check_known(request.query_params, ())

        def run(cur):
            try:
                return {"feeds": feed_health(cur)}
            except psycopg2.errors.UndefinedTable:  # a schema older than migration 0008
                return {"feeds": [], "note": f"schema '{schema}' has no feeds table (finsent db upgrade)"}

        return Json({**db(run), "time": now()})

    async def api_health(request: Request):
        P.check_known(request.query_params, ())

        def db_check():
            t0 = time.monotonic()
            try:
                with pool.cursor() as cur:
                    user, read_only, ok_schema = q.health(cur)
                return {"ok": ok_schema, "user": user, "read_only": read_only, "schema": schema,
                        "ms": round((time.monotonic() - t0) * 1000, 1),
                        **({} if ok_schema else {"error": f"schema '{schema}' has no finsent tables"})}
            except psycopg2.Error as exc:
                return {"ok": False, "schema": schema, "error": first_line(exc)}

        def broker_check():
            return broker_health(settings.kafka_bootstrap, settings.topic_raw, settings.app_id)

        cached = health_cache.get("broker")
        if cached is None or time.monotonic() - cached[0] > 5:
            try:
                b = await asyncio.wait_for(run_in_threadpool(broker_check), timeout=8)
            except asyncio.TimeoutError:
                b = {"ok": False, "error": "no answer from the broker within 8 s"}
            health_cache["broker"] = cached = (time.monotonic(), b)
        d = await run_in_threadpool(db_check)
        broker = cached[1]
        body = {"service": "finsent-dashboard", "status": "ok" if d["ok"] and broker["ok"] else "degraded",
                "database": d, "broker": {k: v for k, v in broker.items() if k != "end_offsets"},
                "consumer_lag": broker.get("lag"), "live_alerts": {"listening": hub.listening,
                                                                   "subscribers": len(hub._subs)},
                "time": now()}
        return Json(body, status_code=200 if d["ok"] else 503)

    async def api_alert_stream(request: Request):
        qp = request.query_params
        P.check_known(qp, ("after", "kind", "scope"))
        after = P.int_param(qp, "after", 0, 0, 2**63 - 1) if qp.get("after") is not None else None
        last_event = request.headers.get("last-event-id")
        if last_event and last_event.isdigit():
            after = int(last_event)
        kind = scope = None
        if qp.get("kind") is not None:
            kind, scope = P.scope_param(qp, required=False)
        if len(hub._subs) >= MAX_STREAMS:
            raise HTTPException(503, f"too many open alert streams (at most {MAX_STREAMS})")
        qu = hub.subscribe()  # before reading the newest id: nothing stored in between is missed
        if after is None:  # from now on
            after = await run_in_threadpool(lambda: db(lambda cur: q.extent(cur)["last_alert_id"]))

        def wanted(r):
            return (kind is None or r["scope_kind"] == kind) and (not scope or r["scope"] == scope)

        async def events():
            last = after
            try:
                missed = await run_in_threadpool(
                    lambda: db(lambda cur: q.list_alerts(cur, None, None, kind, scope or None, 200, last)))
                for r in missed:
                    last = max(last, r["id"])
                    yield ServerSentEvent(data=dumps(r), event="alert", id=str(r["id"]))
                yield ServerSentEvent(data=dumps({"after": last}), event="ready")
                while True:
                    r = await qu.get()
                    if r["id"] <= last or not wanted(r):
                        continue
                    last = r["id"]
                    yield ServerSentEvent(data=dumps(r), event="alert", id=str(r["id"]))
            finally:
                hub.unsubscribe(qu)

        return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-store"})

    # ----------------------------------------------------------------- pages
    def page(request: Request, name: str, **ctx):
        return templates.TemplateResponse(request, name, {"schema": schema, "page": name.split(".")[0], **ctx})

    def overview(request: Request):
        return page(request, "overview.html", title="Overview")

    def ticker_page(request: Request):
        try:
            sym = P.normalize_scope("ticker", request.path_params["symbol"])
        except P.ParamError as exc:
            raise HTTPException(400, str(exc)) from None
        return page(request, "scope.html", title=f"Ticker {sym}", kind="ticker", scope=sym)

    def topic_page(request: Request):
        try:
            name = P.normalize_scope("topic", request.path_params["name"])
        except P.ParamError as exc:
            raise HTTPException(400, str(exc)) from None
        return page(request, "scope.html", title=f"Topic {name}", kind="topic", scope=name)

    def alert_page(request: Request):
        try:
            alert_id = P.positive_id(request.path_params["alert_id"])
        except P.ParamError as exc:
            raise HTTPException(400, str(exc)) from None
        row = db(lambda cur: q.alert_scope(cur, alert_id))
        if row is None:
            raise HTTPException(404, f"no alert {alert_id} in schema '{schema}'")
        return page(request, "alert.html", title=f"Alert {alert_id}", alert_id=alert_id, kind=row[0], scope=row[1])

    def vendor_plotly(request: Request):
        return FileResponse(plotly_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    # ----------------------------------------------------------------- errors, headers
    async def param_error(request: Request, exc: P.ParamError):
        return Json({"error": str(exc)}, status_code=400)

    async def http_error(request: Request, exc: HTTPException):
        if request.url.path.startswith("/api/"):
            return Json({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return templates.TemplateResponse(request, "error.html", {"schema": schema, "page": "error",
                                                                  "title": f"Error {exc.status_code}",
                                                                  "status": exc.status_code, "detail": exc.detail},
                                          status_code=exc.status_code)

    @asynccontextmanager
    async def lifespan(app):
        if check_role:
            with pool.cursor() as cur:
                state["user"] = check_read_only(cur)
        hub.start(asyncio.get_running_loop())
        try:
            yield
        finally:
            hub.stop()
            pool.close()

    routes = [
        Route("/", overview),
        Route("/ticker/{symbol}", ticker_page),
        Route("/topic/{name:path}", topic_page),
        Route("/alert/{alert_id}", alert_page),
        Route("/api/meta", api_meta),
        Route("/api/health", api_health),
        Route("/api/trends", api_trends),
        Route("/api/scopes", api_scopes),
        Route("/api/movers", api_movers),
        Route("/api/alerts", api_alerts),
        Route("/api/alerts/stream", api_alert_stream),
        Route("/api/alerts/{alert_id}", api_alert),
        Route("/api/articles", api_articles),
        Route("/api/feeds", api_feeds),
        Route("/static/vendor/plotly.min.js", vendor_plotly),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(ReadOnlyHeaders)],
                    exception_handlers={P.ParamError: param_error, HTTPException: http_error})
    app.state.pool = pool
    app.state.hub = hub
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


def _service_name(target) -> str:
    """A target's service name and short key, never its URL."""
    svc = target.service
    name = getattr(svc, "service_name", None) or type(svc).__name__
    return f"{name} #{target.key[:6]}"
