"""Feed health as text: ``finsent status`` and ``finsent ingest --list`` (rows of the ``feeds`` view,
:func:`storage.feeds.feed_health`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from stream.base.table import format_table
from stream.sources import edgar

HEALTH_COLUMNS = ("feed", "health", "24h", "last poll", "last success", "failures", "last error")


def when(ts: datetime | None, now: datetime) -> str:
    """'-', '14:03:07' (today, UTC) or '2024-03-04 14:03'."""
    if ts is None:
        return "-"
    ts = ts.astimezone(UTC)
    return f"{ts:%H:%M:%S}" if ts.date() == now.date() else f"{ts:%Y-%m-%d %H:%M}"


def state_text(row: Mapping[str, Any]) -> str:
    state = str(row.get("state") or "?")
    if row.get("overdue") and state == "ok":
        return "ok (overdue: is finsent ingest running?)"
    return state.upper() if state == "unhealthy" else state


def error_text(row: Mapping[str, Any], now: datetime, width: int = 90) -> str:
    if not row.get("last_error"):
        return "-"
    text = f"{when(row.get('last_error_at'), now)} {row['last_error']}"
    return text if len(text) <= width else text[:width - 3] + "..."


def health_rows(rows: Sequence[Mapping[str, Any]], now: datetime | None = None) -> list[list[str]]:
    now = now or datetime.now(UTC)
    return [[str(r["name"]), state_text(r), str(r.get("items_24h") or 0), when(r.get("last_poll_at"), now),
             when(r.get("last_success_at"), now), str(r.get("consecutive_failures") or 0), error_text(r, now)]
            for r in rows]


def health_table(rows: Sequence[Mapping[str, Any]], now: datetime | None = None, indent: str = "") -> str:
    return format_table(HEALTH_COLUMNS, health_rows(rows, now), rule=True, indent=indent)


def _every(seconds: float) -> str:
    return f"{seconds / 60:g}m" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:g}s"


def catalogue_table(catalogue: Mapping[str, Any], health: Sequence[Mapping[str, Any]] | None, user_agent: str,
                    now: datetime | None = None) -> str:
    """The catalogue (enabled first) with each feed's health, then each feed's URL and terms."""
    now = now or datetime.now(UTC)
    by_name = {r["name"]: r for r in health or ()}
    contact = edgar.has_contact(user_agent)
    rows, notes = [], []
    for name, spec in sorted(catalogue.items(), key=lambda kv: (not kv[1].enabled, kv[0])):
        r = by_name.get(name)
        if spec.kind == "edgar" and spec.enabled and not contact:
            state = "NOT POLLED (no contact e-mail in feeds.user_agent)"
        elif r is None:
            state = "unknown" if health is None else "never polled"
        else:
            state = state_text(r)
        rows.append([name, spec.kind, "on" if spec.enabled else "off", _every(spec.interval_s), state,
                     str(r.get("items_24h") or 0) if r else "-", when(r.get("last_success_at"), now) if r else "-",
                     error_text(r, now, 60) if r else "-"])
        notes.append(f"  {name}: {spec.url}\n      terms: {spec.terms or '(none given)'}")
    table = format_table(("feed", "kind", "on", "every", "health", "24h", "last success", "last error"), rows,
                         rule=True)
    return table + "\n\nURLs and terms:\n" + "\n".join(notes)
