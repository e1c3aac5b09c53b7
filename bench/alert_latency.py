"""Alert latency: from the watermark passing a window's end to the HTTP request at the receiver.

    .venv/bin/python bench/alert_latency.py [--alerts 20] [--keep]

Runs against the local stack (``finsent up``; or FINSENT_DATABASE_URL) in a
throw-away schema.  A generated live stream (ground-truth scores, written
with the real writer in 15-second event-time batches, ``AlertService.observe``
after each, as the worker does) carries ``--alerts`` planted negative bursts
on quiet tickers.  A :class:`alerts.notifier.Notifier` runs in a thread of the
same process, woken by PostgreSQL ``NOTIFY`` on commit (no in-process
``wake()``: the same path as a notifier in another process), delivering
through apprise ``json://`` to an HTTP receiver on 127.0.0.1.

For each alert, t0 is the start of the ``observe`` call whose watermark first
passes the end of the alert's window (the moment the window's closing is
observable) and t1 the arrival of the POST at the receiver.  Printed: p50, p90
and max of t1 - t0, with the part spent inside ``observe`` (evaluation,
insert, commit).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.notifier import Notifier
from alerts.service import AlertService
from storage import migrate
from storage.writer import Writer
from stream.base.config import load_settings
from stream.synthetic.generate import Spike, day_start, generate_stream, quiet_tickers
from tests.support.alert_streams import Receiver, article_rows, event_time


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--alerts", type=int, default=20, help="planted bursts (one alert each)")
    ap.add_argument("--rate", type=float, default=40.0, help="generated items per minute at profile 1.0")
    ap.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    args = ap.parse_args(argv)

    base = load_settings()
    schema = f"bench_alerts_{uuid.uuid4().hex[:8]}"
    migrate.upgrade(base.dsn, schema)
    start = day_start(hour=8.0)
    tickers = quiet_tickers(k=args.alerts, seed=99)
    spikes = [Spike(ticker=t, at=start + timedelta(hours=1, minutes=12 * i, seconds=37), size=8)
              for i, t in enumerate(tickers)]
    hours = 1.2 + args.alerts * 12 / 60
    msgs = list(generate_stream(start, timedelta(hours=hours), rate_per_min=args.rate, spikes=spikes, seed=3, truth=True))
    results = []
    with Receiver() as rec:
        settings = base.replace(schema=schema, alert_urls=(f"{rec.url}/hook",))
        notifier = Notifier(settings)
        thread, stop = notifier.start()
        svc = AlertService(settings)
        writer = Writer(settings.dsn, schema)
        try:
            time.sleep(0.5)  # the notifier is listening
            batch, i = [], 0
            t_batch_end = event_time(msgs[0]) + timedelta(seconds=15)
            while i <= len(msgs):
                if i < len(msgs) and event_time(msgs[i]) < t_batch_end:
                    batch.append(msgs[i])
                    i += 1
                    continue
                if batch:
                    writer.write_batch(article_rows(batch))
                    seen = len(rec.accepted)
                    t0 = time.perf_counter()
                    new = svc.observe(event_time(batch[-1]))
                    t_obs = time.perf_counter() - t0
                    for a in new:
                        if not rec.wait_for(seen + 1, 10):
                            print(f"no delivery for {a.scope}", file=sys.stderr)
                            continue
                        _, body, t1, _ = rec.accepted[seen]
                        assert body["title"] == a.title
                        results.append((t1 - t0, t_obs, a.scope))
                        seen += 1
                batch = []
                t_batch_end += timedelta(seconds=15)
                if i >= len(msgs):
                    break
        finally:
            stop.set()
            notifier.wake()
            thread.join(10)
            svc.close()
            writer.close()
            if not args.keep:
                migrate.drop_schema(base.dsn, schema)

    if not results:
        print("no alert fired", file=sys.stderr)
        return 1
    lat = [r[0] * 1000 for r in results]
    obs = [r[1] * 1000 for r in results]
    print(f"alert latency, watermark passes the window end -> HTTP POST at the receiver "
          f"({len(results)} alerts of {len(spikes)} planted, {len(msgs)} items, local PostgreSQL, apprise json://):")
    print(f"  p50 {statistics.median(lat):.0f} ms   p90 {pct(lat, 0.9):.0f} ms   max {max(lat):.0f} ms")
    print(f"  of which detection inside observe() (evaluate, insert, commit): p50 {statistics.median(obs):.0f} ms, "
          f"max {max(obs):.0f} ms")
    return 0 if max(lat) < 2000 else 1


if __name__ == "__main__":
    raise SystemExit(main())
