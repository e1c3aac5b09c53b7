"""stream.chart drawing and the stream.plot command, without a database."""

from __future__ import annotations

import base64
import re
import struct
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from storage.trends import auto_bucket
from stream import chart, plot
from stream.base.errors import UserError

T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
EXPECTED_PX = (int(chart.FIGSIZE[0] * chart.DPI), int(chart.FIGSIZE[1] * chart.DPI))


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def _trend(n: int = 78, step: timedelta = timedelta(minutes=5), gaps: bool = False) -> pd.DataFrame:
    rows = []
    for i in range(n):
        if gaps and i % 4 in (1, 2):
            continue
        neg = 30 if 40 <= i < 43 else 2 + i % 3
        pos = 0 if 40 <= i < 43 else 5 + i % 4
        neu = 4
        arts = neg + pos + neu
        rows.append({"bucket": T0 + i * step, "articles": arts, "negative": neg, "neutral": neu,
                     "positive": pos, "score_sum": 0.8 * (pos - neg)})
    return pd.DataFrame(rows)


def _alerts() -> pd.DataFrame:
    return pd.DataFrame([{
        "window_start": T0 + timedelta(minutes=200), "window_end": T0 + timedelta(minutes=205),
        "articles": 34, "negative": 30, "negative_share": 30 / 34, "z": 6.2, "rule": "ewma_z",
        "replayed": True, "delivery_status": "suppressed",
    }])


def test_render_png_has_fixed_size(tmp_path):
    out = chart.render(_trend(), _alerts(), "Sentiment of ticker ACME", tmp_path / "acme.png",
                       chart.ChartInfo(since=T0, until=T0 + timedelta(hours=6, minutes=30),
                                      width=timedelta(minutes=5), bucket_name="5min"))
    data = out.read_bytes()
    assert out == tmp_path / "acme.png"
    assert _png_size(data) == EXPECTED_PX
    assert len(data) > 30_000  # drawn, not blank
    assert not list(tmp_path.glob(".*.tmp"))


def test_render_from_view_columns_without_alerts(tmp_path):
    df = _trend(n=40, step=timedelta(days=1))
    df["negative_share"] = df["negative"] / df["articles"]
    df["mean_score"] = df["score_sum"] / df["articles"]
    df = df.drop(columns=["score_sum"])
    out = chart.render(df, None, "Sentiment of topic Earnings", tmp_path / "daily.png")
    assert _png_size(out.read_bytes()) == EXPECTED_PX


def test_render_sparse_buckets_and_single_bucket(tmp_path):
    out = chart.render(_trend(gaps=True), _alerts(), "sparse", tmp_path / "sparse.png")
    assert _png_size(out.read_bytes()) == EXPECTED_PX
    out = chart.render(_trend(n=1), None, "one", tmp_path / "one.png")
    assert _png_size(out.read_bytes()) == EXPECTED_PX


def test_render_html_embeds_png_and_tables(tmp_path):
    title = "Sentiment of ticker <ACME> & co"
    out = chart.render(_trend(), _alerts(), title, tmp_path / "acme.html",
                       chart.ChartInfo(scope_kind="ticker", scope="ACME", width=timedelta(minutes=5)))
    page = out.read_text(encoding="utf-8")
    m = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert m, "no inline PNG"
    assert _png_size(base64.b64decode(m.group(1))) == EXPECTED_PX
    assert "&lt;ACME&gt; &amp; co" in page and "<ACME>" not in page  # escaped
    assert "<h2>Alerts</h2>" in page and "6.2" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page  # self-contained


def test_render_rejects_empty_frame_and_unknown_suffix(tmp_path):
    with pytest.raises(ValueError):
        chart.render(_trend().iloc[0:0], None, "empty", tmp_path / "e.png")
    with pytest.raises(UserError):
        chart.render(_trend(), None, "x", tmp_path / "x.jpg")


def test_auto_bucket_widths():
    assert auto_bucket(T0, T0 + timedelta(hours=1)) == "minute"
    assert auto_bucket(T0, T0 + timedelta(hours=8)) == "5min"
    assert auto_bucket(T0, T0 + timedelta(days=1)) == "15min"
    assert auto_bucket(T0, T0 + timedelta(days=7)) == "hour"
    assert auto_bucket(T0, T0 + timedelta(days=90)) == "day"


def test_format_range_and_default_output(tmp_path):
    assert chart.format_range(T0, T0 + timedelta(hours=6, minutes=30)) == "2024-05-01 09:30 – 16:00 UTC"
    day = datetime(2024, 5, 1, tzinfo=UTC)
    assert chart.format_range(day, day + timedelta(days=1)) == "2024-05-01 00:00 – 24:00 UTC"
    assert chart.format_range(day, day + timedelta(days=3)) == "2024-05-01 00:00 – 2024-05-04 00:00 UTC"

    class S:
        state_dir = tmp_path

    p = plot.default_output(S, "M&A, Investments")
    assert p.parent == tmp_path / "plots" and re.fullmatch(r"M_A_Investments-\d{8}T\d{6}Z\.png", p.name)


def test_cli_parses_plot_options():
    from stream.cli import build_parser, cmd_plot

    args = build_parser().parse_args(["plot", "--ticker", "ACME", "--since", "2024-05-01", "--bucket", "hour",
                                      "--schema", "s1", "-o", "x.html"])
    assert args.func is cmd_plot
    assert (args.ticker, args.since, args.bucket, args.schema, args.output) == ("ACME", "2024-05-01", "hour", "s1", "x.html")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["plot", "--ticker", "A", "--topic", "B"])
