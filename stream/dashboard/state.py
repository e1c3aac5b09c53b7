"""What the dashboard's handlers share, kept on ``app.state.dash``: settings, the read pool, the alert hub."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg2
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from storage.db import first_line

if TYPE_CHECKING:
    from stream.dashboard.server import AlertHub, ReadPool


@dataclass
class DashboardState:
    settings: Any  # stream.base.settings.Settings
    schema: str
    pool: ReadPool
    hub: AlertHub
    templates: Jinja2Templates
    now: Callable[[], datetime]
    targets: list  # the apprise targets, for per-target delivery status
    check_role: bool = True
    health_cache: dict[str, Any] = field(default_factory=dict)
    user: str | None = None  # the login, once checked read-only

    def db(self, fn):
        """Run ``fn(cur)`` on a pooled read-only connection; database trouble becomes 503 JSON."""
        try:
            with self.pool.cursor() as cur:
                return fn(cur)
        except psycopg2.errors.QueryCanceled:
            raise HTTPException(503, "the query took longer than the dashboard's statement timeout") from None
        except psycopg2.errors.UndefinedTable:
            raise HTTPException(503, f"schema '{self.schema}' has no finsent tables (finsent db upgrade --schema "
                                     f"{self.schema})") from None
        except psycopg2.Error as exc:
            raise HTTPException(503, f"database error: {first_line(exc)}") from None


def state(request: Request) -> DashboardState:
    return request.app.state.dash
