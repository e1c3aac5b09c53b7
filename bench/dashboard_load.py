"""Page load time of the dashboard's ticker page over 30 days of demo-sized data, in headless chromium.

Seeds a schema (default ``bench_dash``; dropped and rebuilt unless ``--reuse``) with 30 trading
days, each the size of ``finsent demo``'s day (~12,000 generated headlines over 300 tickers,
09:00-16:30 New York time, one planted negative spike a day), stored by the real writer with the
generator's ground-truth scores (no model needed).  Then serves the dashboard on a free port and
loads ``/ticker/<busiest ticker>?range=30d`` in Debian's headless chromium: the time from
navigation start to the moment the page has drawn its chart and headlines (``performance.mark``
``finsent-loaded`` in dashboard.js), first load with an empty browser cache, then the median of
``--runs`` reloads.  Also times the API calls the page makes.

    .venv/bin/python bench/dashboard_load.py [--days 30] [--runs 10] [--reuse]

Needs the local stack up (``finsent up``) and chromium + chromedriver (``make setup``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from model.cpu import describe_cpu
from storage import migrate
from storage.db import fetch_all
from storage.writer import Writer
from stream.base.config import load_settings
from stream.dashboard.browser import open_browser, wait_for
from stream.dashboard.serve import ServerThread
from stream.dashboard.server import create_app
from stream.synthetic.generate import Spike, day_start, generate_stream, quiet_tickers
from tests.support.alert_streams import article_rows


def seed(settings, days: int, items: int, tickers: int) -> dict:
    migrate.drop_schema(settings.dsn, settings.schema)
    migrate.upgrade(settings.dsn, schema=settings.schema)
    first = date(2025, 2, 3)
    spikes = quiet_tickers(tickers, k=days, seed=3)
    n = 0
    t0 = time.monotonic()
    with Writer(settings.dsn, settings.schema) as w:
        for d in range(days):
            start = day_start(first + timedelta(days=d), hour=9.0)
            spike = Spike(ticker=spikes[d % len(spikes)], at=start + timedelta(hours=4, minutes=47), size=14)
            msgs = list(generate_stream(start, timedelta(hours=7, minutes=30), tickers=tickers,
                                        rate_per_min=items / 500.0, spikes=[spike], seed=100 + d, truth=True))
            for i in range(0, len(msgs), 1000):
                w.write_batch(article_rows(msgs[i:i + 1000]))
            n += len(msgs)
            print(f"  day {d + 1}/{days}: {len(msgs)} headlines ({n} in all, {time.monotonic() - t0:.0f}s)", flush=True)
    return {"articles": n, "first": day_start(first, hour=9.0), "seconds": time.monotonic() - t0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", default="bench_dash")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--items", type=int, default=12000, help="headlines a day (the demo's default)")
    ap.add_argument("--tickers", type=int, default=300)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--reuse", action="store_true", help="keep an already seeded schema")
    args = ap.parse_args()

    settings = load_settings().replace(schema=args.schema)
    print(f"CPU: {describe_cpu()}")
    if not args.reuse or not fetch_all(settings.dsn, "public",
                                       "SELECT 1 FROM pg_namespace WHERE nspname = %s", (args.schema,)):
        print(f"seeding schema {args.schema}: {args.days} days x ~{args.items} headlines, {args.tickers} tickers")
        st = seed(settings, args.days, args.items, args.tickers)
        print(f"seeded {st['articles']} articles in {st['seconds']:.0f}s")
    (total,), = fetch_all(settings.dsn, args.schema, "SELECT count(*) FROM articles")
    (last,), = fetch_all(settings.dsn, args.schema, "SELECT max(published_at) FROM articles")
    (ticker, n_t), = fetch_all(settings.dsn, args.schema,
                               "SELECT scope, sum(articles) FROM sentiment_day WHERE scope_kind = 'ticker'"
                               " GROUP BY scope ORDER BY 2 DESC LIMIT 1")
    until = (last + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:00Z")
    print(f"schema {args.schema}: {total} articles; ticker page of {ticker} ({n_t} articles in the range), "
          f"range=30d until {until}")

    with ServerThread(create_app(settings)) as srv:
        url = f"{srv.url}/ticker/{ticker}?range=30d&until={until}"
        api_calls = {
            "trends": ("/api/trends", {"kind": "ticker", "scope": ticker, "range": "30d", "until": until}),
            "articles": ("/api/articles", {"kind": "ticker", "scope": ticker, "range": "30d", "until": until,
                                           "limit": 100}),
            "alerts": ("/api/alerts", {"kind": "ticker", "scope": ticker, "range": "30d", "until": until}),
        }
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            for name, (path, params) in api_calls.items():
                ms = []
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    r = c.get(path, params=params)
                    ms.append((time.perf_counter() - t0) * 1000)
                    r.raise_for_status()
                print(f"  GET {path} ({name}): median {statistics.median(ms):.1f} ms, max {max(ms):.1f} ms "
                      f"over {args.runs}; {len(r.content)} bytes")
        d = open_browser()
        try:
            loads = []
            for i in range(args.runs + 1):
                d.get(url)
                wait_for(d, "document.body.dataset.loaded", 60)
                ms = d.execute_script("const m = performance.getEntriesByName('finsent-loaded');"
                                      " return m.length ? m[0].startTime : null")
                pts = d.execute_script("return document.getElementById('chart-scope').dataset.points")
                rows = d.execute_script("return document.querySelectorAll('#headlines tbody tr').length")
                if not ms or not int(pts or 0) or not rows:
                    raise SystemExit(f"the page did not show the data (chart buckets {pts}, headlines {rows}): {url}")
                loads.append(ms)
                if i == 0:
                    print(f"  first load (empty browser cache, plotly.min.js 4.8 MB from 127.0.0.1): {ms:.0f} ms"
                          f" ({pts} chart buckets, {rows} headlines)")
            warm = loads[1:]
            print(f"  reloads: median {statistics.median(warm):.0f} ms, min {min(warm):.0f}, max {max(warm):.0f} "
                  f"over {len(warm)} loads (navigation start -> chart drawn and headlines shown)")
        finally:
            d.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
