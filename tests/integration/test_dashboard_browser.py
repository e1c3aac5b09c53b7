"""End to end in a real headless browser (Debian's chromium through its chromedriver): the overview
receives an alert pushed live while it is open, the alert leads to its ticker page, whose chart
(with the alert window shaded) and headlines are there; the watchlist is kept by the browser.
Screenshots are saved under the test's temp dir."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from storage import migrate
from storage.writer import ArticleRow, Writer
from stream.dashboard.browser import console_errors, find_browser, full_page_screenshot, open_browser, wait_for
from stream.dashboard.serve import ServerThread
from stream.dashboard.server import create_app
from tests.integration.dashboard_support import SPIKE_1, SPIKE_2, START, iso, seed_schema

_, _, WHY = find_browser()


@pytest.fixture
def seeded(stack):
    s = seed_schema(stack.settings, prefix="t_dashb")
    yield s
    migrate.drop_schema(stack.settings.dsn, s.schema)


@pytest.fixture
def browser():
    if WHY:
        pytest.skip(f"no headless browser: {WHY}")
    d = open_browser()
    yield d
    d.quit()


def test_overview_live_alert_to_ticker_page_in_chromium(seeded, browser, tmp_path):
    from selenium.webdriver.common.by import By

    from tests.support.alert_streams import store_and_observe

    d = browser
    # a hostile headline with linked ticker spans, shortly before the second spike
    hostile = f"<img src=x onerror=alert(1)> {SPIKE_2.ticker} files <script>alert(2)</script> update"
    start = hostile.index(SPIKE_2.ticker)
    with Writer(seeded.settings.dsn, seeded.schema) as w:
        w.write_batch([ArticleRow(
            id="dash-hostile-1", published_at=SPIKE_2.at - timedelta(minutes=20), source="Test Wire",
            url="javascript:alert(3)", title=hostile, tickers=[SPIKE_2.ticker], topic="Markets", topic_score=0.9,
            sentiment="neutral", p_negative=0.1, p_neutral=0.8, p_positive=0.1, sentiment_score=0.0,
            model_version="test",
            ticker_links=[{"ticker": SPIKE_2.ticker, "rule": "symbol", "start": start,
                           "end": start + len(SPIKE_2.ticker), "text": SPIKE_2.ticker}])])
    with ServerThread(create_app(seeded.settings, poll_s=120)) as srv:  # pushes within seconds = NOTIFY
        # a preset range ending at a given time (range=6h&until=...) keeps its end
        d.get(f"{srv.url}/ticker/{SPIKE_1.ticker}?range=6h&until={iso(START + timedelta(hours=4))}")
        wait_for(d, "document.body.dataset.loaded === '1'", 30)
        assert int(d.find_element(By.ID, "chart-scope").get_attribute("data-points")) > 0
        assert len(d.find_elements(By.CSS_SELECTOR, "#headlines tbody tr")) > 5
        assert d.find_element(By.CSS_SELECTOR, '#range [data-range="6h"]').get_attribute("class") == "active"

        rng = f"since={iso(START)}&until={iso(START + timedelta(hours=4))}"
        d.get(f"{srv.url}/?{rng}")
        wait_for(d, "document.body.dataset.loaded === '1'", 30)
        assert d.find_element(By.ID, "chart-market").get_attribute("data-rendered") == "1"
        first = d.find_elements(By.CSS_SELECTOR, "#alerts li")
        shown = {li.get_attribute("data-alert-id"): li.text for li in first}
        assert set(shown) == {str(a.id) for a in seeded.alerts}
        assert SPIKE_1.ticker in shown[str(seeded.spike_alert.id)]
        assert len(d.find_elements(By.CSS_SELECTOR, "#topics tbody tr")) >= 10
        assert len(d.find_elements(By.CSS_SELECTOR, "#movers tbody tr")) >= 5
        wait_for(d, "document.body.dataset.live === 'ready'", 20)

        # the pipeline stores a new alert while the page is open: it appears without a reload
        new = store_and_observe(seeded.settings, seeded.second_half)
        spike2 = next(a for a in new if a.scope_kind == "ticker" and a.scope == SPIKE_2.ticker)
        wait_for(d, f"document.querySelector('#alerts li.new[data-alert-id=\"{spike2.id}\"]')", 20)
        assert d.execute_script("return performance.getEntriesByType('navigation').length") == 1  # no reload
        d.save_screenshot(str(tmp_path / "overview-live-alert.png"))

        # follow the pushed alert to its ticker page
        d.find_element(By.CSS_SELECTOR, f'#alerts li[data-alert-id="{spike2.id}"] a.scope-link').click()
        wait_for(d, "document.body.dataset.loaded === '1'", 30)
        assert d.current_url.startswith(f"{srv.url}/ticker/{SPIKE_2.ticker}?")
        chart = d.find_element(By.ID, "chart-scope")
        assert chart.get_attribute("data-rendered") == "1" and int(chart.get_attribute("data-points")) > 0
        assert int(chart.get_attribute("data-alerts")) >= 1
        assert d.find_elements(By.CSS_SELECTOR, "#chart-scope .shapelayer path")  # the alert window, shaded
        assert d.find_elements(By.CSS_SELECTOR, "#chart-scope .modebar")  # zoom / pan / reset
        rows = d.find_elements(By.CSS_SELECTOR, "#headlines tbody tr")
        assert len(rows) >= 10
        assert all(SPIKE_2.ticker in r.find_element(By.CSS_SELECTOR, "td:last-child").text for r in rows)
        spike_titles = {m["title"] for m in seeded.second_half if m["truth"]["event"] == "spike:1"}
        shown = {r.find_element(By.CSS_SELECTOR, "td.headline").text for r in rows}
        assert len(shown & spike_titles) >= 5
        links = [a.get_attribute("href") for a in d.find_elements(By.CSS_SELECTOR, "#headlines td.headline a")]
        assert links and all(h.startswith("https://") for h in links)  # the javascript: URL is not linked
        row = d.find_element(By.CSS_SELECTOR, '#headlines tr[data-id="dash-hostile-1"]')
        assert row.find_element(By.CSS_SELECTOR, "td.headline").text == hostile  # shown as text, never run
        assert row.find_element(By.CSS_SELECTOR, "td.headline mark").text == SPIKE_2.ticker  # the matched span
        assert not d.find_elements(By.CSS_SELECTOR, "#headlines img, #headlines script")
        assert str(spike2.id) in [li.get_attribute("data-alert-id") for li in d.find_elements(By.CSS_SELECTOR, "#alerts li")]

        # pin it; the overview's watchlist (browser storage) shows it
        d.find_element(By.ID, "pin").click()
        assert "pinned" in d.find_element(By.ID, "pin").text
        full_page_screenshot(d, tmp_path / "ticker-page.png")
        d.get(f"{srv.url}/?{rng}")
        wait_for(d, "document.body.dataset.loaded === '1'", 30)
        wl = d.find_elements(By.CSS_SELECTOR, "#watchlist tbody tr")
        assert [r.get_attribute("data-ticker") for r in wl] == [SPIKE_2.ticker]
        assert len(wl[0].find_elements(By.TAG_NAME, "td")) == 5  # with its numbers

        # a topic page (a name with a comma and a space)
        d.get(f"{srv.url}/topic/{quote('Fed, Central Banks')}?{rng}")
        wait_for(d, "document.body.dataset.loaded === '1'", 30)
        assert int(d.find_element(By.ID, "chart-scope").get_attribute("data-points")) > 0
        topics = {r.text for r in d.find_elements(By.CSS_SELECTOR, "#headlines tbody td:nth-child(3)")}
        assert topics == {"Fed, Central Banks"}

        # the alert page: rule, z, window on the chart, top articles
        d.get(f"{srv.url}/alert/{spike2.id}")
        wait_for(d, "document.body.dataset.loaded === '1'", 30)
        facts = d.find_element(By.ID, "alert-facts").text
        assert spike2.rule in facts and f"{spike2.z:.2f}" in facts
        assert int(d.find_element(By.ID, "chart-alert").get_attribute("data-alerts")) >= 1
        assert len(d.find_elements(By.CSS_SELECTOR, "#top-articles tbody tr")) == len(spike2.top_article_ids)
        full_page_screenshot(d, tmp_path / "alert-page.png")
        assert console_errors(d) == []  # no script error, no blocked resource (CSP), no failed request
        # pages left behind closed their event streams (a browser holds only 6 connections per server)
        health = d.execute_script("return fetch('/api/health').then(r => r.json())")
        assert health["live_alerts"]["subscribers"] == 1
    for name in ("overview-live-alert.png", "ticker-page.png", "alert-page.png"):
        assert (tmp_path / name).stat().st_size > 20_000


def test_a_headline_with_opposite_fortunes_on_each_companys_ticker_page(stack, browser, tmp_path):
    """Per-company sentiment in chromium: one headline bad for LOSER and good for WINNER (neutral as a whole)
    shows on both ticker pages, scored toward each company, with the headline's own score beside it."""
    from selenium.webdriver.common.by import By

    from tests.integration.dashboard_support import LOSER, WINNER, seed_rivalry

    settings, rivalry = seed_rivalry(stack.settings)
    d = browser
    rng = f"since={iso(START)}&until={iso(START + timedelta(hours=1))}"
    try:
        with ServerThread(create_app(settings)) as srv:
            for company, own in ((LOSER, "negative"), (WINNER, "positive")):
                d.get(f"{srv.url}/ticker/{company.ticker}?{rng}")
                wait_for(d, "document.body.dataset.loaded === '1'", 30)
                assert f"score toward {company.ticker}" in d.find_element(By.CSS_SELECTOR, "#headlines thead").text
                for m in rivalry:
                    row = d.find_element(By.CSS_SELECTOR, f'#headlines tr[data-id="{m["id"]}"]')
                    assert row.find_element(By.CSS_SELECTOR, "td.headline").text == m["title"]
                    assert LOSER.name in m["title"] and WINNER.name in m["title"]
                    cell = row.find_element(By.CSS_SELECTOR, "td.score")
                    assert cell.get_attribute("data-sentiment") == own
                    assert own[:3] in cell.get_attribute("class")  # neg / pos colour
                    assert f"sentiment toward {company.ticker}: {own}" in cell.get_attribute("title")
                    own_score = float(cell.find_element(By.CSS_SELECTOR, ".own").text)
                    assert (own_score < -0.5) if own == "negative" else (own_score > 0.5)
                    head = cell.find_element(By.CSS_SELECTOR, ".headline-score")  # the headline's, which differs
                    assert head.get_attribute("data-sentiment") == "neutral" and head.text == "headline +0.00"
                # a headline whose sentiment toward the ticker is the headline's shows one score only
                others = [r for r in d.find_elements(By.CSS_SELECTOR, "#headlines tbody tr")
                          if r.get_attribute("data-id") not in {m["id"] for m in rivalry}]
                assert others and not any(r.find_elements(By.CSS_SELECTOR, ".headline-score") for r in others)
                full_page_screenshot(d, tmp_path / f"ticker-{company.ticker}.png")
            assert console_errors(d) == []
    finally:
        migrate.drop_schema(stack.settings.dsn, settings.schema)
    for company in (LOSER, WINNER):
        assert (tmp_path / f"ticker-{company.ticker}.png").stat().st_size > 20_000


def test_overview_shows_feed_health_with_unhealthy_feeds_in_red(pg, browser, tmp_path):
    """The poller's own records (storage.feeds.record_poll, as finsent_writer): an unhealthy feed's row is red,
    a feed that failed once is amber, a healthy one plain; each shows its items and its last error."""
    from selenium.webdriver.common.by import By

    from storage.db import WRITER_ROLE, connect
    from storage.feeds import Poll, record_poll

    now = datetime.now(UTC)
    conn = connect(pg.dsn, pg.schema, role=WRITER_ROLE)
    with conn, conn.cursor() as cur:
        record_poll(cur, Poll("sec-edgar-8k", "http://127.0.0.1:9/edgar", "edgar", now, True, items=12,
                              next_at=now + timedelta(minutes=2)))
        for n in (1, 2, 3):
            record_poll(cur, Poll("prnewswire-all", "http://127.0.0.1:9/prn", "rss", now, False,
                                  error="http_503: HTTP 503 Service Unavailable, Retry-After 600 s", failures=n,
                                  healthy=n < 3, next_at=now + timedelta(minutes=10)))
        record_poll(cur, Poll("federal-reserve-press", "http://127.0.0.1:9/fed", "rss", now, True, items=1))
        record_poll(cur, Poll("federal-reserve-press", "http://127.0.0.1:9/fed", "rss", now, False,
                              error="timeout: no answer within 20 s", failures=1, healthy=True))
    conn.close()
    with ServerThread(create_app(pg, poll_s=120)) as srv:
        d = browser
        d.get(srv.url + "/")
        wait_for(d, "document.body.dataset.loaded === '1'", 30)
        rows = {r.get_attribute("data-feed"): r for r in d.find_elements(By.CSS_SELECTOR, "#feeds tbody tr")}
        assert list(rows) == ["prnewswire-all", "federal-reserve-press", "sec-edgar-8k"]  # the worst first
        red = "rgba(192, 57, 43, 1)"  # --neg, #c0392b
        bad = rows["prnewswire-all"]
        assert "feed-unhealthy" in bad.get_attribute("class")
        assert bad.find_element(By.CSS_SELECTOR, "td.state").text == "unhealthy"
        assert bad.find_element(By.CSS_SELECTOR, "td.state").value_of_css_property("color") == red
        assert "HTTP 503" in bad.find_element(By.CSS_SELECTOR, "td.err").text
        failing = rows["federal-reserve-press"].find_element(By.CSS_SELECTOR, "td.state")
        assert failing.text == "failing" and failing.value_of_css_property("color") not in (red, "rgba(31, 42, 51, 1)")
        ok = rows["sec-edgar-8k"]
        assert ok.find_element(By.CSS_SELECTOR, "td.state").text == "ok"
        assert ok.find_element(By.CSS_SELECTOR, "td.state").value_of_css_property("color") != red
        assert ok.find_elements(By.CSS_SELECTOR, "td.n")[0].text == "12"
        assert d.find_element(By.ID, "feeds-empty").get_attribute("hidden") is not None
        full_page_screenshot(d, tmp_path / "overview-feeds.png")
        assert console_errors(d) == []
    assert (tmp_path / "overview-feeds.png").stat().st_size > 20_000
