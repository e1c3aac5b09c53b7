"""The one reader of time arguments given on the command line (--since, --from, --until ...).

Accepted everywhere: ``now``; an RFC 3339 / ISO 8601 time or date (``Z`` or an
offset; naive = UTC); or an age meaning that long ago: ``30s``, ``90m``
(minutes), ``6h``, ``7d``, ``2w``, ``6mo`` (30-day months), ``1y`` (365 days),
the long unit names (``days``, ``hours`` ...), a bare number = days.

The ``published_at`` field of news.raw is validated elsewhere
(``stream/messages/raw_message.py`` ``parse_published_at``): that is message validation,
not argument parsing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from stream.base.errors import UserError

_AGE_RE = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds|d|day|days|h|hour|hours|w|week|weeks|m|min|minutes"
    r"|mo|month|months|y|year|years)?\s*$",
    re.IGNORECASE,
)
_UNITS = {"s": 1, "d": 86400, "h": 3600, "w": 7 * 86400, "m": 60, "mo": 30 * 86400, "y": 365 * 86400}
_ALIASES = {"sec": "s", "secs": "s", "seconds": "s", "day": "d", "days": "d", "hour": "h", "hours": "h",
            "week": "w", "weeks": "w", "min": "m", "minutes": "m", "month": "mo", "months": "mo",
            "year": "y", "years": "y"}


def parse_iso(text: str) -> datetime:
    """An ISO 8601 time or date, ``Z`` allowed, naive read as UTC; ValueError if it is not one."""
    t = text.strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    ts = datetime.fromisoformat(t)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def parse_age(text: str) -> timedelta:
    """'400d', '12h', '2w', '90m' (minutes), '6mo' (30-day months), '1y' (365 days); bare number = days."""
    m = _AGE_RE.match(text or "")
    if not m:
        raise UserError(f"cannot read age {text!r}: use e.g. 400d, 12h, 2w, 6mo or 1y")
    n = float(m.group(1))
    unit = (m.group(2) or "d").lower()
    return timedelta(seconds=n * _UNITS[_ALIASES.get(unit, unit)])


def parse_time_arg(text: str, now: datetime | None = None) -> datetime:
    """A time argument (see the module doc) as an aware datetime; UserError if unreadable."""
    now = now or datetime.now(UTC)
    t = (text or "").strip()
    if not t:
        raise UserError("empty time")
    if t.lower() == "now":
        return now
    try:
        return parse_iso(t)
    except ValueError:
        pass
    try:
        return now - parse_age(t)
    except UserError:
        raise UserError(f"cannot read time {text!r}: use e.g. 2024-05-01, 2024-05-01T12:00:00Z or 7d (ago)") from None
