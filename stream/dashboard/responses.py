"""JSON responses of the dashboard: datetimes in UTC with ``Z``, decimals as numbers, no NaN."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from starlette.responses import JSONResponse


def _json_default(o):
    if isinstance(o, datetime):
        return o.astimezone(UTC).isoformat().replace("+00:00", "Z")
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
