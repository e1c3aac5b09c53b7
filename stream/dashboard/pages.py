"""The dashboard's HTML pages and error handlers: handlers over ``app.state.dash`` (:mod:`.state`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse

from storage import dashboard as q
from stream.dashboard import params as P
from stream.dashboard.responses import Json
from stream.dashboard.state import state


def plotly_js() -> Path:
    """plotly.min.js as shipped inside the ``plotly`` PyPI package (nothing from a CDN)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def page(request: Request, name: str, **ctx):
    st = state(request)
    return st.templates.TemplateResponse(request, name, {"schema": st.schema, "page": name.split(".")[0], **ctx})


def overview(request: Request):
    return page(request, "overview.html", title="Overview")


def _scope_page(request: Request, kind: str, param: str):
    try:
        scope = P.normalize_scope(kind, request.path_params[param])
    except P.ParamError as exc:
        raise HTTPException(400, str(exc)) from None
    return page(request, "scope.html", title=f"{kind.capitalize()} {scope}", kind=kind, scope=scope)


def ticker_page(request: Request):
    return _scope_page(request, "ticker", "symbol")


def topic_page(request: Request):
    return _scope_page(request, "topic", "name")


def alert_page(request: Request):
    try:
        alert_id = P.positive_id(request.path_params["alert_id"])
    except P.ParamError as exc:
        raise HTTPException(400, str(exc)) from None
    st = state(request)
    row = st.db(lambda cur: q.alert_scope(cur, alert_id))
    if row is None:
        raise HTTPException(404, f"no alert {alert_id} in schema '{st.schema}'")
    return page(request, "alert.html", title=f"Alert {alert_id}", alert_id=alert_id, kind=row[0], scope=row[1])


def vendor_plotly(request: Request):
    return FileResponse(plotly_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})


async def param_error(request: Request, exc: P.ParamError):
    return Json({"error": str(exc)}, status_code=400)


async def http_error(request: Request, exc: HTTPException):
    if request.url.path.startswith("/api/"):
        return Json({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    st = state(request)
    return st.templates.TemplateResponse(request, "error.html", {"schema": st.schema, "page": "error",
                                                                 "title": f"Error {exc.status_code}",
                                                                 "status": exc.status_code, "detail": exc.detail},
                                         status_code=exc.status_code)
