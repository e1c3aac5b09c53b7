"""``finsent plot``: trend charts of one ticker or topic, with its alert windows.

Three parts, this one the command:

* the queries are :mod:`storage.trends` (the sentiment buckets -- ``sentiment_minute`` rolled up
  to the chosen width, or the ``trend_hourly`` / ``trend_daily`` views -- and the ``alerts`` of one
  scope, read as the read-only ``finsent_analyst`` role, falling back to the pipeline's URL when
  that role cannot log in or read the schema);
* the drawing is :mod:`stream.chart` (frames into PNG/SVG/PDF or a self-contained HTML page);
* here: :func:`fetch` checks the arguments and reads one scope into frames, :func:`plot_scope`
  chains fetch and render and is what ``finsent demo`` calls::

      path = plot_scope(settings, "ticker", "ACME")
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import psycopg2

from storage import trends
from storage.db import check_schema, first_line
from storage.trends import ALERT_COLUMNS, BUCKET_CHOICES, BUCKETS, auto_bucket, ceil_to, floor_to
from stream.base.errors import UserError
from stream.base.labels import SCOPE_KINDS, scope_label
from stream.chart import (
    OUTPUT_SUFFIXES,
    ChartInfo,
    as_utc,
    fmt_time,
    format_range,
    normalize_alerts,
    normalize_trend,
    render,
)


@dataclass
class ScopeData:
    scope_kind: str
    scope: str
    trend: pd.DataFrame
    alerts: pd.DataFrame
    since: datetime
    until: datetime
    bucket: str
    width: timedelta


def fetch(
    settings,
    scope_kind: str,
    scope: str,
    since: datetime | None = None,
    until: datetime | None = None,
    bucket: str = "auto",
    schema: str | None = None,
) -> ScopeData:
    """Read the trend buckets and alerts of one scope; ``UserError`` when there is nothing to plot."""
    if scope_kind not in SCOPE_KINDS:
        raise UserError(f"scope kind must be one of {', '.join(SCOPE_KINDS)}, not {scope_kind!r}")
    if bucket not in BUCKET_CHOICES:
        raise UserError(f"--bucket must be one of {', '.join(BUCKET_CHOICES)}, not {bucket!r}")
    scope = (scope or "").strip()
    if scope_kind == "ticker":
        scope = scope.lstrip("$").upper()
    if scope_kind == "all":
        scope = "all"
    if not scope:
        raise UserError(f"empty {scope_kind} name")
    schema = check_schema(schema or settings.schema)
    since = as_utc(since).to_pydatetime() if since is not None else None
    until = as_utc(until).to_pydatetime() if until is not None else None
    if since is not None and until is not None and until <= since:
        raise UserError(f"--until ({fmt_time(until)} UTC) must be after --since ({fmt_time(since)} UTC)")
    label = scope_label(scope_kind, scope)

    conn = trends.connect_reader(settings.dsn, settings.analyst_dsn, schema)
    try:
        with conn.cursor() as cur:
            has_minutes, has_views, has_alerts = trends.tables(cur)
            if not has_minutes or not has_views:
                raise UserError(
                    f"schema '{schema}' has no finsent trend tables: run 'finsent db upgrade --schema {schema}'"
                )
            stored = trends.resolve_scope(cur, scope_kind, scope)
            if stored is None:
                known = trends.top_scopes(cur, scope_kind)
                hint = f"; {scope_kind}s with the most articles: {', '.join(known)}" if known else \
                    f"; no {scope_kind} has any data in schema '{schema}' yet (run a replay or 'finsent demo')"
                raise UserError(f"no data for {label} in schema '{schema}'{hint}")
            scope = stored
            label = scope_label(scope_kind, scope)
            lo, hi = trends.extent(cur, scope_kind, scope)
            if lo is None:
                raise UserError(f"no data for {label} in schema '{schema}'")
            rng_since = since or lo
            rng_until = until or hi
            if rng_until <= rng_since or rng_since >= hi or rng_until <= lo:
                raise UserError(
                    f"no data for {label} between {fmt_time(rng_since)} and {fmt_time(rng_until)} UTC "
                    f"(it has data from {fmt_time(lo)} to {fmt_time(hi)} UTC)"
                )
            name = bucket if bucket != "auto" else auto_bucket(rng_since, rng_until)
            width = BUCKETS[name][0]
            # align the plotted range on whole buckets
            q_since, q_until = floor_to(rng_since, width), ceil_to(rng_until, width)
            columns, rows = trends.trend_rows(cur, scope_kind, scope, name, q_since, q_until)
            trend = pd.DataFrame(rows, columns=list(columns))
            if trend.empty or int(trend["articles"].sum()) == 0:
                raise UserError(
                    f"no data for {label} between {fmt_time(rng_since)} and {fmt_time(rng_until)} UTC "
                    f"(it has data from {fmt_time(lo)} to {fmt_time(hi)} UTC)"
                )
            if "score_sum" in trend.columns:
                trend["score_sum"] = trend["score_sum"].astype("float64")
            trend = normalize_trend(trend)
            if has_alerts:
                alerts = pd.DataFrame(trends.alert_windows(cur, scope_kind, scope, q_since, q_until),
                                      columns=list(ALERT_COLUMNS))
            else:
                alerts = pd.DataFrame(columns=list(ALERT_COLUMNS))
    except psycopg2.Error as exc:
        raise UserError(f"cannot read the trends of {label} in schema '{schema}': {first_line(exc)}") from None
    finally:
        conn.close()
    return ScopeData(scope_kind, scope, trend, normalize_alerts(alerts), q_since, q_until, name, width)


# --------------------------------------------------------------------------- entry points
def default_output(settings, scope: str, suffix: str = ".png") -> Path:
    """``<state_dir>/plots/<scope>-<UTC timestamp>.png`` (a new name if that exists)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", scope).strip("._") or "scope"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = Path(settings.state_dir) / "plots"
    path = base / f"{safe}-{stamp}{suffix}"
    n = 2
    while path.exists():
        path = base / f"{safe}-{stamp}-{n}{suffix}"
        n += 1
    return path


def plot_scope(
    settings,
    scope_kind: str,
    scope: str,
    since: datetime | None = None,
    until: datetime | None = None,
    out: str | Path | None = None,
    bucket: str = "auto",
    schema: str | None = None,
) -> Path:
    """Chart one scope ('ticker', 'topic' or 'all') into ``out`` (default under the state dir); returns the path.

    Raises :class:`~stream.base.errors.UserError` when the scope has no data in the range.
    """
    data = fetch(settings, scope_kind, scope, since, until, bucket=bucket, schema=schema)
    schema = schema or settings.schema
    path = Path(out).expanduser() if out else default_output(settings, data.scope)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UserError(f"cannot write {path}: the output must end in {', '.join(OUTPUT_SUFFIXES)}")
    what = "all news" if data.scope_kind == "all" else f"{data.scope_kind} {data.scope}"
    title = f"Sentiment of {what}, {format_range(data.since, data.until)}"
    info = ChartInfo(since=data.since, until=data.until, width=data.width, bucket_name=data.bucket,
                     scope_kind=data.scope_kind, scope=data.scope, source=f"schema {schema}")
    try:
        return render(data.trend, data.alerts, title, path, info)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
