"""``finsent plot`` against the real database: buckets written by the pipeline's writer, read as the analyst."""

from __future__ import annotations

import struct
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from storage import trends
from storage.writer import ArticleRow, Writer
from stream import chart, plot
from tests.conftest import REPO

T0 = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)


def _rows(n: int = 60) -> list[ArticleRow]:
    rows = []
    for i in range(n):
        minute = i // 3  # 3 articles a minute over 20 minutes
        sentiment = "negative" if 10 <= minute < 13 or i % 5 == 0 else ("positive" if i % 2 else "neutral")
        pn, pz, pp = {"negative": (0.8, 0.15, 0.05), "neutral": (0.1, 0.8, 0.1),
                      "positive": (0.05, 0.15, 0.8)}[sentiment]
        rows.append(ArticleRow(
            id=f"plot-{i}", published_at=T0 + timedelta(minutes=minute, seconds=7 * (i % 3)),
            source="test", url=None, title=f"headline {i}", tickers=["PLOTX"] + (["OTHER"] if i % 4 == 0 else []),
            topic="Earnings", topic_score=0.9, sentiment=sentiment, p_negative=pn, p_neutral=pz,
            p_positive=pp, sentiment_score=pp - pn, model_version="test",
        ))
    return rows


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stream.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=180)


@pytest.fixture
def filled(stack, schema):
    with Writer(stack.dsn, schema) as w:
        assert len(w.write_batch(_rows()).inserted) == 60
    conn = psycopg2.connect(stack.dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f'SET search_path TO "{schema}"')
            cur.execute(
                """INSERT INTO alerts (scope_kind, scope, window_start, window_end, rule, articles, negative,
                                       negative_share, mean_score, baseline, baseline_std, baseline_windows,
                                       z, title, message, replayed, delivery_status)
                   VALUES ('ticker', 'PLOTX', %s, %s, 'test', 15, 15, 1.0, -0.75, 1.0, 1.0, 10, 14.0,
                           'spike', 'spike', true, 'suppressed')""",
                (T0 + timedelta(minutes=10), T0 + timedelta(minutes=15)),
            )
    finally:
        conn.close()
    return schema


def test_plot_cli_writes_png(filled, tmp_path):
    out = tmp_path / "plotx.png"
    res = _run("plot", "--ticker", "plotx", "--schema", filled, "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(out)
    assert _png_size(out) == (int(chart.FIGSIZE[0] * chart.DPI), int(chart.FIGSIZE[1] * chart.DPI))
    assert out.stat().st_size > 20_000


def test_plot_cli_html_for_topic(filled, tmp_path):
    out = tmp_path / "earnings.html"
    res = _run("plot", "--topic", "earnings", "--schema", filled, "--bucket", "5min", "-o", str(out))
    assert res.returncode == 0, res.stderr
    page = out.read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "topic Earnings" in page
    assert "<script" not in page and "http" not in page.split("<body>", 1)[1]


def test_plot_scope_reads_counts_and_alerts(stack, filled):
    s = stack.settings
    data = plot.fetch(s, "ticker", "PLOTX", schema=filled)
    assert data.bucket == "minute" and int(data.trend["articles"].sum()) == 60
    assert int(data.trend["negative"].sum()) == sum(r.sentiment == "negative" for r in _rows())
    assert len(data.alerts) == 1 and float(data.alerts["z"].iloc[0]) == 14.0
    hourly = plot.fetch(s, "ticker", "PLOTX", bucket="hour", schema=filled)
    assert len(hourly.trend) == 1 and int(hourly.trend["articles"].iloc[0]) == 60


def test_plot_reads_as_analyst(stack, filled):
    conn = trends.connect_reader(stack.settings.dsn, stack.settings.analyst_dsn, filled)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user")
            assert cur.fetchone()[0] == "finsent_analyst"
    finally:
        conn.close()


def test_plot_default_output_under_state_dir(stack, filled):
    path = plot.plot_scope(stack.settings, "ticker", "PLOTX", since=T0, until=T0 + timedelta(hours=1),
                           schema=filled)
    try:
        assert path.parent == stack.settings.state_dir / "plots"
        assert path.name.startswith("PLOTX-") and path.suffix == ".png" and path.stat().st_size > 0
    finally:
        path.unlink(missing_ok=True)


def test_plot_no_data_is_a_clear_error(filled, tmp_path):
    res = _run("plot", "--ticker", "NOPE", "--schema", filled, "-o", str(tmp_path / "x.png"))
    assert res.returncode == 2
    assert "no data for ticker NOPE" in res.stderr and "PLOTX" in res.stderr  # suggests known tickers
    res = _run("plot", "--ticker", "PLOTX", "--schema", filled, "--since", "2020-01-01", "--until", "2020-01-02",
               "-o", str(tmp_path / "x.png"))
    assert res.returncode == 2 and "has data from 2024-05-01 13:00" in res.stderr
    assert not (tmp_path / "x.png").exists()
    assert "finsent_analyst:" not in res.stderr  # no passwords in messages


def test_demo_read_outs(stack, filled):
    dsn = stack.dsn
    assert trends.counts(dsn, filled) == (60, 1)
    movers = trends.ticker_movers(dsn, filled, limit=5)
    assert {m[0] for m in movers} == {"PLOTX", "OTHER"}
    plotx = next(m for m in movers if m[0] == "PLOTX")
    assert plotx[1:3] == (60, sum(r.sentiment == "negative" for r in _rows()))
    (alert,) = trends.alert_summaries(dsn, filled)
    assert alert[:2] == ("ticker", "PLOTX") and alert[4:6] == (15, 15) and float(alert[6]) == 14.0
    assert trends.scope_alert_ids(dsn, filled, "ticker", "PLOTX") and not trends.scope_alert_ids(dsn, filled, "ticker", "OTHER")
    rows = {r[0]: r for r in trends.titles(dsn, filled, ["plot-0", "plot-1", "nope"])}
    assert set(rows) == {"plot-0", "plot-1"} and rows["plot-1"][1] == "headline 1"
    assert trends.link_rule_counts(dsn, filled) == {}  # rows written without ticker_links


def test_drop_schema(stack):
    import uuid

    from storage import migrate

    name = f"t_drop_{uuid.uuid4().hex[:10]}"
    migrate.upgrade(stack.dsn, schema=name)
    migrate.drop_schema(stack.dsn, name)
    conn = psycopg2.connect(stack.dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (name,))
            assert cur.fetchone()[0] == 0
    finally:
        conn.close()
    migrate.drop_schema(stack.dsn, name)  # gone already: fine
