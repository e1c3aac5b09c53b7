"""The dashboard's JSON API under ``/api/``: handlers over ``app.state.dash`` (:mod:`.state`)."""

from __future__ import annotations

import asyncio
import time

import psycopg2
from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request

from storage import dashboard as q
from storage.db import first_line
from storage.feeds import feed_health
from stream.dashboard import params as P
from stream.dashboard.health import broker_health
from stream.dashboard.responses import Json, dumps
from stream.dashboard.state import DashboardState, state

MAX_STREAMS = 200  # open /api/alerts/stream connections


def api_meta(request: Request):
    P.check_known(request.query_params, ())
    st = state(request)
    ext = st.db(q.extent)
    return Json({"schema": st.schema, "now": st.now(), **ext, "ranges": list(P.RANGES),
                 "buckets": list(P.BUCKET_CHOICES), "scope_kinds": list(P.SCOPE_KINDS)})


def api_trends(request: Request):
    qp, st = request.query_params, state(request)
    P.check_known(qp, ("kind", "scope", "range", "since", "until", "bucket"))
    kind, scope = P.scope_param(qp)
    rng = P.time_range(qp, st.now())
    bucket, width = P.bucket_param(qp, rng)

    def run(cur):
        t = q.trend(cur, kind, scope, rng.since, rng.until, bucket, width, max_points=P.MAX_POINTS)
        t["alerts"] = q.scope_alerts(cur, kind, scope, t["since"], t["until"], limit=500)
        return t

    return Json({"kind": kind, "scope": scope, "bucket": bucket, "bucket_seconds": int(width.total_seconds()),
                 **st.db(run)})


def api_scopes(request: Request):
    qp, st = request.query_params, state(request)
    P.check_known(qp, ("kind", "range", "since", "until", "limit", "prefix"))
    kind = P.choice(qp, "kind", P.SCOPE_KINDS, "topic")
    limit = P.int_param(qp, "limit", 50, 1, 500)
    if qp.get("prefix") is not None:
        prefix = qp["prefix"].strip()
        if len(prefix) > 80:
            raise P.ParamError("prefix: at most 80 characters")
        return Json({"kind": kind, "scopes": st.db(lambda cur: q.find_scopes(cur, kind, prefix, limit))})
    rng = P.time_range(qp, st.now())
    return Json({"kind": kind, **st.db(lambda cur: q.scope_totals(cur, kind, rng.since, rng.until, limit))})


def api_movers(request: Request):
    qp, st = request.query_params, state(request)
    P.check_known(qp, ("range", "since", "until", "limit", "min_articles"))
    rng = P.time_range(qp, st.now())
    limit = P.int_param(qp, "limit", 10, 1, 200)
    min_articles = P.int_param(qp, "min_articles", 5, 1, 1_000_000)
    return Json(st.db(lambda cur: q.movers(cur, rng.since, rng.until, limit, min_articles)))


def api_alerts(request: Request):
    qp, st = request.query_params, state(request)
    P.check_known(qp, ("kind", "scope", "range", "since", "until", "limit", "after"))
    limit = P.int_param(qp, "limit", 50, 1, 500)
    kind = scope = None
    if qp.get("kind") is not None:
        kind, scope = P.scope_param(qp, required=False)
    elif qp.get("scope") is not None:
        raise P.ParamError("scope needs kind (ticker or topic)")
    rng = P.time_range(qp, st.now(), default="30d") if any(k in qp for k in ("range", "since", "until")) else None
    after = P.int_param(qp, "after", 0, 0, 2**63 - 1) if qp.get("after") is not None else None
    rows = st.db(lambda cur: q.list_alerts(cur, rng.since if rng else None, rng.until if rng else None,
                                           kind, scope or None, limit, after))
    return Json({"alerts": rows})


def api_alert(request: Request):
    P.check_known(request.query_params, ())
    st = state(request)
    alert_id = P.positive_id(request.path_params["alert_id"])

    def run(cur):
        row = q.alert_scope(cur, alert_id)
        if row is None:
            return None
        ts = [{"key": t.key, "service": service_name(t), "routes": t.routes(row[0], row[1])} for t in st.targets]
        return q.alert_detail(cur, alert_id, ts)

    out = st.db(run)
    if out is None:
        raise HTTPException(404, f"no alert {alert_id} in schema '{st.schema}'")
    return Json(out)


def api_articles(request: Request):
    qp, st = request.query_params, state(request)
    P.check_known(qp, ("kind", "scope", "range", "since", "until", "limit", "sentiment", "order"))
    kind, scope = P.scope_param(qp)
    rng = P.time_range(qp, st.now())
    limit = P.int_param(qp, "limit", 50, 1, 500)
    sentiment = P.choice(qp, "sentiment", P.SENTIMENTS, None)
    order = P.choice(qp, "order", ("newest", "negative"), "newest")
    rows = st.db(lambda cur: q.articles(cur, kind, scope, rng.since, rng.until, limit, sentiment, order))
    return Json({"kind": kind, "scope": scope, "since": rng.since, "until": rng.until, "articles": rows})


def api_feeds(request: Request):
    P.check_known(request.query_params, ())
    st = state(request)

    def run(cur):
        try:
            return {"feeds": feed_health(cur)}
        except psycopg2.errors.UndefinedTable:  # a schema older than migration 0008
            return {"feeds": [], "note": f"schema '{st.schema}' has no feeds table (finsent db upgrade)"}

    return Json({**st.db(run), "time": st.now()})


def _db_check(st: DashboardState) -> dict:
    t0 = time.monotonic()
    try:
        with st.pool.cursor() as cur:
            user, read_only, ok_schema = q.health(cur)
        return {"ok": ok_schema, "user": user, "read_only": read_only, "schema": st.schema,
                "ms": round((time.monotonic() - t0) * 1000, 1),
                **({} if ok_schema else {"error": f"schema '{st.schema}' has no finsent tables"})}
    except psycopg2.Error as exc:
        return {"ok": False, "schema": st.schema, "error": first_line(exc)}


async def _broker(st: DashboardState) -> dict:
    """The broker's health, asked at most every 5 s."""
    s = st.settings
    cached = st.health_cache.get("broker")
    if cached is None or time.monotonic() - cached[0] > 5:
        try:
            b = await asyncio.wait_for(run_in_threadpool(broker_health, s.kafka_bootstrap, s.topic_raw, s.app_id),
                                       timeout=8)
        except TimeoutError:
            b = {"ok": False, "error": "no answer from the broker within 8 s"}
        st.health_cache["broker"] = cached = (time.monotonic(), b)
    return cached[1]


async def api_health(request: Request):
    P.check_known(request.query_params, ())
    st = state(request)
    broker = await _broker(st)
    d = await run_in_threadpool(_db_check, st)
    body = {"service": "finsent-dashboard", "status": "ok" if d["ok"] and broker["ok"] else "degraded",
            "database": d, "broker": {k: v for k, v in broker.items() if k != "end_offsets"},
            "consumer_lag": broker.get("lag"), "live_alerts": {"listening": st.hub.listening,
                                                               "subscribers": len(st.hub._subs)},
            "time": st.now()}
    return Json(body, status_code=200 if d["ok"] else 503)


async def api_alert_stream(request: Request):
    qp, st = request.query_params, state(request)
    P.check_known(qp, ("after", "kind", "scope"))
    after = P.int_param(qp, "after", 0, 0, 2**63 - 1) if qp.get("after") is not None else None
    last_event = request.headers.get("last-event-id")
    if last_event and last_event.isdigit():
        after = int(last_event)
    kind = scope = None
    if qp.get("kind") is not None:
        kind, scope = P.scope_param(qp, required=False)
    if len(st.hub._subs) >= MAX_STREAMS:
        raise HTTPException(503, f"too many open alert streams (at most {MAX_STREAMS})")
    qu = st.hub.subscribe()  # before reading the newest id: nothing stored in between is missed
    if after is None:  # from now on
        after = await run_in_threadpool(lambda: st.db(lambda cur: q.extent(cur)["last_alert_id"]))
    return EventSourceResponse(_alert_events(st, qu, after, kind, scope), ping=15,
                               headers={"Cache-Control": "no-store"})


async def _alert_events(st: DashboardState, qu: asyncio.Queue, after: int, kind: str | None, scope: str | None):
    """The alerts after ``after`` (those missed first), then each new one as it is stored."""
    last = after
    try:
        missed = await run_in_threadpool(
            lambda: st.db(lambda cur: q.list_alerts(cur, None, None, kind, scope or None, 200, last)))
        for r in missed:
            last = max(last, r["id"])
            yield ServerSentEvent(data=dumps(r), event="alert", id=str(r["id"]))
        yield ServerSentEvent(data=dumps({"after": last}), event="ready")
        while True:
            r = await qu.get()
            if r["id"] <= last or not ((kind is None or r["scope_kind"] == kind) and (not scope or r["scope"] == scope)):
                continue
            last = r["id"]
            yield ServerSentEvent(data=dumps(r), event="alert", id=str(r["id"]))
    finally:
        st.hub.unsubscribe(qu)


def service_name(target) -> str:
    """A target's service name and short key, never its URL."""
    svc = target.service
    name = getattr(svc, "service_name", None) or type(svc).__name__
    return f"{name} #{target.key[:6]}"
