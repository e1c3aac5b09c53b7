"""Query parameters of the dashboard's JSON API: parsed and validated here, pure (no I/O).

Every endpoint declares the parameters it takes; anything else, or a value
out of range, raises :class:`ParamError` whose message the server returns as
a 400 ``{"error": ...}``.  Values reach SQL only as bound parameters.

Times: ``since`` / ``until`` as ISO 8601 (``2024-05-01T09:30:00Z``, a date,
or a naive time read as UTC), or ``range`` = ``1h`` / ``6h`` / ``1d`` / ``7d`` /
``30d`` ending at ``until`` (default: now).  A range spans at most
``MAX_SPAN``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from storage.trends import BUCKETS, auto_bucket
from stream.base.labels import (  # re-exported: api.py reads P.SENTIMENTS
    SCOPE_KINDS as BASE_SCOPE_KINDS,
    SENTIMENTS as SENTIMENTS,
)
from stream.base.timeparse import parse_iso

RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
MAX_SPAN = timedelta(days=400)
MAX_POINTS = 5000  # buckets one trend request may return
SCOPE_KINDS = tuple(sorted(BASE_SCOPE_KINDS))  # alphabetical, as the API lists them
BUCKET_CHOICES = ("auto", *BUCKETS)
MIN_TIME = datetime(1990, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)

_TICKER = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,15}$")
_MAX_VALUE_LEN = 200


class ParamError(ValueError):
    """A bad request parameter; the message says which and why."""


@dataclass(frozen=True)
class TimeRange:
    since: datetime
    until: datetime

    @property
    def span(self) -> timedelta:
        return self.until - self.since


def check_known(query: Mapping[str, str], allowed: Iterable[str]) -> None:
    allowed = set(allowed)
    unknown = sorted(k for k in query if k not in allowed)
    if unknown:
        raise ParamError(
            f"unknown parameter(s): {', '.join(repr(k[:40]) for k in unknown)}; "
            f"this endpoint takes: {', '.join(sorted(allowed)) or 'none'}"
        )
    for k, v in query.items():
        if len(v) > _MAX_VALUE_LEN:
            raise ParamError(f"{k}: value too long (at most {_MAX_VALUE_LEN} characters)")
        if any(ord(c) < 32 or ord(c) == 127 for c in v):
            raise ParamError(f"{k}: control characters are not allowed")


def param_time(name: str, text: str) -> datetime:
    t = text.strip()
    if not t:
        raise ParamError(f"{name}: empty time")
    try:
        ts = parse_iso(t)
    except ValueError:
        raise ParamError(f"{name}: not an ISO 8601 time or date: {text[:40]!r} (e.g. 2024-05-01T09:30:00Z)") from None
    try:
        ts = ts.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ParamError(f"{name}: time out of range: {text[:40]!r}") from None
    if not MIN_TIME <= ts <= MAX_TIME:
        raise ParamError(f"{name}: time out of range (between {MIN_TIME:%Y} and {MAX_TIME:%Y})")
    return ts


def time_range(query: Mapping[str, str], now: datetime, default: str = "1d") -> TimeRange:
    """``since``/``until``/``range`` -> a UTC range; ``range`` and ``since`` exclude each other."""
    rng = query.get("range")
    if rng is not None and query.get("since") is not None:
        raise ParamError("give either range or since, not both")
    until = param_time("until", query["until"]) if query.get("until") is not None else now
    if query.get("since") is not None:
        since = param_time("since", query["since"])
    else:
        key = rng if rng is not None else default
        if key not in RANGES:
            raise ParamError(f"range: must be one of {', '.join(RANGES)}, not {key[:20]!r}")
        since = until - RANGES[key]
    if until <= since:
        raise ParamError("until must be after since")
    if until - since > MAX_SPAN:
        raise ParamError(f"the range spans more than {MAX_SPAN.days} days")
    return TimeRange(since, until)


def int_param(query: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        v = int(raw.strip(), 10)
    except ValueError:
        raise ParamError(f"{name}: not an integer: {raw[:20]!r}") from None
    if not lo <= v <= hi:
        raise ParamError(f"{name}: must be between {lo} and {hi}, not {v}")
    return v


def choice(query: Mapping[str, str], name: str, choices: Iterable[str], default: str | None) -> str | None:
    raw = query.get(name)
    if raw is None:
        return default
    choices = tuple(choices)
    if raw not in choices:
        raise ParamError(f"{name}: must be one of {', '.join(choices)}, not {raw[:30]!r}")
    return raw


def normalize_scope(kind: str, scope: str | None) -> str:
    """The stored spelling of a scope: tickers upper case without '$', topics trimmed; 'all' for all."""
    if kind == "all":
        return "all"
    s = (scope or "").strip()
    if not s:
        raise ParamError(f"scope: a {kind} name is required")
    if kind == "ticker":
        s = s.lstrip("$").upper()
        if not _TICKER.match(s):
            raise ParamError(f"scope: not a ticker symbol: {scope[:20]!r} (letters, digits, '.', '-'; at most 16)")
        return s
    if len(s) > 80:
        raise ParamError("scope: a topic name has at most 80 characters")
    return s


def scope_param(query: Mapping[str, str], *, required: bool = True, default_kind: str = "all") -> tuple[str, str]:
    kind = choice(query, "kind", SCOPE_KINDS, default_kind)
    if kind != "all" and query.get("scope") is None and not required:
        return kind, ""
    return kind, normalize_scope(kind, query.get("scope"))


def bucket_param(query: Mapping[str, str], rng: TimeRange) -> tuple[str, timedelta]:
    name = choice(query, "bucket", BUCKET_CHOICES, "auto")
    if name == "auto":
        name = auto_bucket(rng.since, rng.until)
    width = BUCKETS[name][0]
    if rng.span / width > MAX_POINTS:
        raise ParamError(f"bucket: {name} gives more than {MAX_POINTS} points over this range; choose a wider one")
    return name, width


def positive_id(text: str) -> int:
    try:
        v = int(text, 10)
    except ValueError:
        raise ParamError(f"not an alert id: {text[:20]!r}") from None
    if not 1 <= v <= 2**63 - 1:
        raise ParamError(f"not an alert id: {text[:20]!r}")
    return v
