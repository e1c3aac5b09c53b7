"""Drawing of trend charts: pandas frames into a PNG (or SVG/PDF) or a self-contained HTML page.

No database here (the queries are :mod:`storage.trends`, the command :mod:`stream.plot`), so the
drawing is tested on frames alone.  :func:`render` writes the file: three panels over a shared UTC
time axis -- mean sentiment score (p_positive - p_negative, -1..+1), negative share of the articles
(%), and the article volume per bucket stacked by sentiment -- with the scope's alert windows
shaded in every panel.  The HTML page inlines the PNG as base64 plus small tables: no scripts,
nothing fetched from the internet.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from storage.trends import ALERT_COLUMNS
from stream.base.errors import UserError
from stream.base.labels import scope_label

# Figure geometry: the PNG is FIGSIZE * DPI pixels (no tight bbox, so the size is fixed).
FIGSIZE = (12.0, 7.5)
DPI = 120
OUTPUT_SUFFIXES = (".png", ".html", ".svg", ".pdf")

COLORS = {
    "negative": "#c0392b",
    "neutral": "#a6acaf",
    "positive": "#27ae60",
    "score": "#1f4e79",
    "share": "#c0392b",
    "alert": "#f39c12",
}


# --------------------------------------------------------------------------- helpers
def as_utc(ts) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def fmt_time(ts) -> str:
    return as_utc(ts).strftime("%Y-%m-%d %H:%M")


def format_range(since, until) -> str:
    """``2024-05-01 09:30 – 16:00 UTC`` when both ends fall on one day, else both dates."""
    a, b = as_utc(since), as_utc(until)
    last = b - pd.Timedelta(microseconds=1)  # the range is [since, until)
    if a.date() == last.date():
        end = "24:00" if b.date() != a.date() else b.strftime("%H:%M")
        return f"{a.strftime('%Y-%m-%d %H:%M')} – {end} UTC"
    return f"{fmt_time(a)} – {fmt_time(b)} UTC"


def normalize_trend(df: pd.DataFrame) -> pd.DataFrame:
    """Trend rows sorted by bucket, UTC times, numeric counts, share/score recomputed where missing."""
    missing = [c for c in ("bucket", "articles", "negative") if c not in df.columns]
    if missing:
        raise ValueError(f"trend frame lacks column(s): {', '.join(missing)}")
    out = df.copy()
    out["bucket"] = pd.to_datetime(out["bucket"], utc=True)
    for c in ("articles", "negative", "neutral", "positive"):
        if c not in out.columns:
            out[c] = 0
        out[c] = pd.to_numeric(out[c]).fillna(0).astype("int64")
    arts = out["articles"].where(out["articles"] > 0)
    if "negative_share" not in out.columns:
        out["negative_share"] = out["negative"] / arts
    if "mean_score" not in out.columns:
        if "score_sum" not in out.columns:
            raise ValueError("trend frame needs mean_score or score_sum")
        out["mean_score"] = out["score_sum"] / arts
    out["negative_share"] = pd.to_numeric(out["negative_share"], errors="coerce").astype("float64")
    out["mean_score"] = pd.to_numeric(out["mean_score"], errors="coerce").astype("float64")
    return out.sort_values("bucket").reset_index(drop=True)


def infer_width(buckets: pd.Series) -> timedelta:
    """The bucket width of a trend frame: the smallest step between buckets (1 minute at least)."""
    if len(buckets) < 2:
        return timedelta(minutes=1)
    step = pd.Series(buckets).sort_values().diff().dropna()
    step = step[step > pd.Timedelta(0)]
    if step.empty:
        return timedelta(minutes=1)
    return max(step.min().to_pytimedelta(), timedelta(minutes=1))


# --------------------------------------------------------------------------- drawing
@dataclass(frozen=True)
class ChartInfo:
    """Extra facts for the chart and the HTML page (all optional for :func:`render`)."""

    since: datetime | None = None
    until: datetime | None = None
    width: timedelta | None = None
    bucket_name: str | None = None
    scope_kind: str | None = None
    scope: str | None = None
    source: str | None = None  # e.g. "schema public"


def _figure(df: pd.DataFrame, alerts: pd.DataFrame, title: str, info: ChartInfo):
    # matplotlib is imported when a chart is drawn: 1.5-2.9 s (python -X importtime, loaded 2-core
    # machine), which every finsent command would pay at start-up (stream.cli imports stream.plot)
    from matplotlib.figure import Figure  # here: matplotlib, 1.5-2.9 s of start-up (see render)

    width = info.width or infer_width(df["bucket"])
    since = as_utc(info.since) if info.since is not None else df["bucket"].iloc[0]
    until = as_utc(info.until) if info.until is not None else df["bucket"].iloc[-1] + width
    # Lines run through bucket centres and break where buckets have no articles
    # (a score is undefined there); bars span their bucket.
    line = _line_frame(df, width)
    x = line["bucket"] + pd.Timedelta(width) / 2
    has = line["articles"] > 0
    n_points = int(has.sum())
    prev_has = has.shift(1, fill_value=False)
    next_has = has.shift(-1, fill_value=False)
    isolated = has & ~prev_has & ~next_has  # points a line cannot show
    dots = has if n_points <= 80 else isolated

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    gs = fig.add_gridspec(3, 1, height_ratios=(3, 2, 2))
    ax_score = fig.add_subplot(gs[0])
    ax_share = fig.add_subplot(gs[1], sharex=ax_score)
    ax_vol = fig.add_subplot(gs[2], sharex=ax_score)
    axes = (ax_score, ax_share, ax_vol)

    total = int(df["articles"].sum())
    neg = int(df["negative"].sum())
    mean_all = float((df["mean_score"].fillna(0) * df["articles"]).sum() / total) if total else float("nan")
    subtitle = (
        f"{total:,} articles, {neg / total:.0%} negative, mean score {mean_all:+.2f}"
        if total else "no articles"
    ) + f"  ·  {len(alerts)} alert{'s' if len(alerts) != 1 else ''}"
    subtitle += f"  ·  {_width_label(width)} buckets"
    fig.suptitle(f"{title}\n{subtitle}", fontsize=12)

    alert_label = _alert_windows(axes, alerts, (until - since) * 0.005)
    _score_panel(ax_score, x, line["mean_score"].where(has), dots, alert_label)
    _share_panel(ax_share, x, line["negative_share"].where(has), dots, neg / total if total else None)
    _volume_panel(ax_vol, df, width)
    _time_axis(axes, since, until)
    return fig


def _alert_windows(axes, alerts: pd.DataFrame, min_span) -> str | None:
    """Alert windows shaded in every panel (short ones widened to ``min_span``, to stay visible on long
    ranges), their z above the first; the legend's label, when there is any."""
    ax_score = axes[0]
    alert_label = None
    for _, a in alerts.iterrows():
        ws, we = as_utc(a["window_start"]), as_utc(a["window_end"])
        if we - ws < min_span:
            mid = ws + (we - ws) / 2
            ws, we = mid - min_span / 2, mid + min_span / 2
        for ax in axes:
            ax.axvspan(ws, we, color=COLORS["alert"], alpha=0.25, lw=0, zorder=0)
        alert_label = "alert window"
        z = a.get("z")
        if len(alerts) <= 12 and z is not None and pd.notna(z):  # more would overlap
            ax_score.annotate(
                f"alert z={float(z):.1f}", xy=(ws + (we - ws) / 2, 1.0), xycoords=("data", "axes fraction"),
                xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=8,
                color="#a04000", annotation_clip=False,
            )
    return alert_label


def _score_panel(ax_score, x, score, dots, alert_label: str | None) -> None:
    """Panel 1: the mean sentiment score."""
    from matplotlib.patches import Patch

    ax_score.axhline(0, color="#555555", lw=0.8, zorder=1)
    ax_score.fill_between(x, 0, score, where=(score >= 0).to_numpy(), interpolate=True,
                          color=COLORS["positive"], alpha=0.18, lw=0, zorder=1)
    ax_score.fill_between(x, 0, score, where=(score < 0).to_numpy(), interpolate=True,
                          color=COLORS["negative"], alpha=0.18, lw=0, zorder=1)
    ax_score.plot(x, score, color=COLORS["score"], lw=1.6, marker="o", ms=3, markevery=dots.to_numpy(),
                  label="mean sentiment score", zorder=3)
    ax_score.set_ylim(-1.05, 1.05)
    ax_score.set_ylabel("mean score\n(p_pos − p_neg)")
    handles, labels = ax_score.get_legend_handles_labels()
    if alert_label:
        handles.append(Patch(color=COLORS["alert"], alpha=0.35, lw=0))
        labels.append(alert_label)
    ax_score.legend(handles, labels, loc="best", fontsize=9, framealpha=0.85)


def _share_panel(ax_share, x, share, dots, average: float | None) -> None:
    """Panel 2: the negative share, and the period's average."""
    from matplotlib.ticker import PercentFormatter

    ax_share.plot(x, share, color=COLORS["share"], lw=1.6, marker="o", ms=3,
                  markevery=dots.to_numpy(), label="negative share of articles", zorder=3)
    if average is not None:
        ax_share.axhline(average, color=COLORS["share"], lw=1, ls="--", alpha=0.6,
                         label=f"period average ({average:.0%})", zorder=2)
    ax_share.set_ylim(-0.02, 1.02)
    ax_share.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax_share.set_ylabel("negative share\n(% of articles)")
    ax_share.legend(loc="best", fontsize=9, framealpha=0.85)


def _volume_panel(ax_vol, df: pd.DataFrame, width: timedelta) -> None:
    """Panel 3: article volume, stacked by sentiment."""
    from matplotlib.dates import date2num
    from matplotlib.ticker import MaxNLocator

    bar_w = (date2num(pd.Timestamp("2000-01-01") + pd.Timedelta(width))
             - date2num(pd.Timestamp("2000-01-01"))) * 0.9
    bottom = pd.Series(0, index=df.index, dtype="int64")
    for name in ("negative", "neutral", "positive"):
        ax_vol.bar(df["bucket"], df[name], width=bar_w, bottom=bottom, align="edge",
                   color=COLORS[name], label=name, lw=0, zorder=2)
        bottom = bottom + df[name]
    ax_vol.set_ylabel(f"articles per\n{_width_text(width)}")
    ax_vol.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax_vol.set_ylim(0, max(1, int(bottom.max())) * 1.35)  # headroom for the legend
    ax_vol.legend(loc="upper left", fontsize=9, ncols=3, framealpha=0.85)
    ax_vol.set_xlabel("time (UTC)")


def _time_axis(axes, since, until) -> None:
    """The shared UTC time axis, grids, no top or right spines."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    ax_score, ax_share, ax_vol = axes
    locator = AutoDateLocator(tz=UTC, minticks=4, maxticks=10)
    ax_vol.xaxis.set_major_locator(locator)
    ax_vol.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=UTC))
    ax_vol.set_xlim(since, until)
    for ax in (ax_score, ax_share):
        ax.tick_params(labelbottom=False)
    for ax in axes:
        ax.grid(True, axis="both", color="#dddddd", lw=0.6, zorder=0)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)


def _line_frame(df: pd.DataFrame, width: timedelta, max_buckets: int = 50_000) -> pd.DataFrame:
    """``df`` on its full bucket grid (empty buckets as rows with 0 articles), so that lines break there."""
    first, last = df["bucket"].iloc[0], df["bucket"].iloc[-1]
    n = int((last - first) / pd.Timedelta(width)) + 1
    if n > max_buckets or n <= len(df):
        return df
    grid = pd.date_range(first, last, freq=pd.Timedelta(width))
    if not df["bucket"].isin(grid).all():  # irregular buckets: leave as they are
        return df
    out = df.set_index("bucket").reindex(grid)
    out.index.name = "bucket"
    out["articles"] = out["articles"].fillna(0)
    return out.reset_index()


def _width_label(width: timedelta) -> str:
    """``1-minute``, ``5-minute``, ``hourly``, ``daily``, ``6-hour``..."""
    text = _width_text(width)
    if text in ("hour", "day"):
        return {"hour": "hourly", "day": "daily"}[text]
    n, _, unit = text.partition(" ")
    return f"1-{n}" if not unit else f"{n}-{unit.rstrip('s')}"


def _width_text(width: timedelta) -> str:
    secs = int(width.total_seconds())
    if secs % 86400 == 0:
        n, unit = secs // 86400, "day"
    elif secs % 3600 == 0:
        n, unit = secs // 3600, "hour"
    else:
        n, unit = max(1, secs // 60), "minute"
    return unit if n == 1 else f"{n} {unit}s"


def normalize_alerts(df: pd.DataFrame | None) -> pd.DataFrame:
    if df is None or len(df) == 0:
        return pd.DataFrame(columns=list(ALERT_COLUMNS))
    out = df.copy()
    for c in ("window_start", "window_end"):
        out[c] = pd.to_datetime(out[c], utc=True)
    return out.sort_values("window_start").reset_index(drop=True)


def render(
    df_trend: pd.DataFrame,
    df_alerts: pd.DataFrame | None,
    title: str,
    path: str | Path,
    info: ChartInfo | None = None,
) -> Path:
    """Draw a trend frame (and its alert windows) into ``path`` (.png, .svg, .pdf or .html).

    ``df_trend``: one row per bucket with ``bucket`` (start, UTC), ``articles``,
    ``negative`` [, ``neutral``, ``positive``], and ``negative_share`` /
    ``mean_score`` (or ``score_sum`` to derive them) -- the columns of the
    trend views.  ``df_alerts``: rows with ``window_start``, ``window_end`` and
    optionally ``z``, ``negative``, ``articles``... (the ``alerts`` table).
    Returns the path written.  Raises ``ValueError`` on an empty trend frame.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # here: matplotlib, 1.5-2.9 s of start-up (see render)

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise UserError(f"cannot write {path}: the output must end in {', '.join(OUTPUT_SUFFIXES)}")
    df = normalize_trend(df_trend)
    if df.empty or int(df["articles"].sum()) == 0:
        raise ValueError("nothing to plot: the trend frame has no articles")
    alerts = normalize_alerts(df_alerts)
    info = info or ChartInfo()
    fig = _figure(df, alerts, title, info)
    FigureCanvasAgg(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if suffix == ".html":
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": "finsent"})
            tmp.write_text(_html_page(df, alerts, title, info, buf.getvalue()), encoding="utf-8")
        else:
            meta = {"Title": title} if suffix in (".png", ".svg", ".pdf") else None
            if suffix == ".png":
                meta["Software"] = "finsent"
            fig.savefig(tmp, format=suffix[1:], dpi=DPI, metadata=meta)
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _html_table(headers: Sequence[str] | None, rows: Sequence[Sequence[object]]) -> str:
    head = ""
    if headers:
        head = "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr></thead>"
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table>{head}<tbody>{body}</tbody></table>"


def _num(v, fmt: str) -> str:
    return "–" if v is None or (isinstance(v, float) and pd.isna(v)) else format(v, fmt)


def _html_page(df: pd.DataFrame, alerts: pd.DataFrame, title: str, info: ChartInfo, png: bytes) -> str:
    width = info.width or infer_width(df["bucket"])
    since = info.since if info.since is not None else df["bucket"].iloc[0]
    until = info.until if info.until is not None else df["bucket"].iloc[-1] + width
    total = int(df["articles"].sum())
    neg = int(df["negative"].sum())
    mean_all = float((df["mean_score"].fillna(0) * df["articles"]).sum() / total)
    summary = [
        ("scope", scope_label(info.scope_kind, info.scope) if info.scope_kind else title),
        ("time range", format_range(since, until)),
        ("buckets", f"{len(df):,} {_width_label(width)} buckets with articles"),
        ("articles", f"{total:,}"),
        ("negative", f"{neg:,} ({neg / total:.1%})"),
        ("mean sentiment score", f"{mean_all:+.3f}"),
        ("alerts", f"{len(alerts)}"),
    ]
    if info.source:
        summary.append(("source", info.source))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
        "img{max-width:100%;height:auto;border:1px solid #ddd}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}"
        "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.9em}"
        "th{background:#f4f4f4}td.n{text-align:right}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<img alt="{html.escape(title)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">',
        "<h2>Summary</h2>",
        _html_table(None, summary),
    ]
    if len(alerts):
        rows = []
        for _, a in alerts.iterrows():
            rows.append((
                f"{fmt_time(a['window_start'])} – {as_utc(a['window_end']).strftime('%H:%M')} UTC",
                a.get("articles", "–"), a.get("negative", "–"),
                _num(a.get("negative_share"), ".0%"), _num(a.get("z"), ".1f"),
                a.get("delivery_status", "–"), "yes" if a.get("replayed") is True else "no",
            ))
        parts += ["<h2>Alerts</h2>",
                  _html_table(("window", "articles", "negative", "negative share", "z", "delivery", "replayed"), rows)]
    worst = df[df["articles"] > 0].sort_values(["negative", "negative_share"], ascending=False).head(10)
    rows = [
        (fmt_time(r.bucket), r.articles, r.negative, _num(r.negative_share, ".0%"), _num(r.mean_score, "+.2f"))
        for r in worst.itertuples()
    ]
    parts += [f"<h2>Most negative {html.escape(_width_text(width))} buckets</h2>",
              _html_table(("bucket (UTC)", "articles", "negative", "negative share", "mean score"), rows),
              "<p><small>Generated by finsent plot.</small></p>", "</body></html>", ""]
    return "\n".join(parts)
