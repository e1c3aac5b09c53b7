#!/usr/bin/env python
"""Pipeline benchmark: real broker, real worker process, real database, one run.

Prints, on the same generated headlines:
  * model-only throughput (engine.predict in worker-sized batches, in this process);
  * end-to-end throughput: first produce -> last row committed, with a warmed-up worker;
  * their ratio (the figure to compare across machines);
  * p50/p99 produce -> news.scored latency under a steady load (default 50 items/s),
    news.scored being written after the batch's transaction commits;
  * the worker's peak RSS (VmHWM).

Usage: python bench/pipeline.py [--items 20000] [--rate 50] [--steady-seconds 30]
Needs the local stack (`finsent up`) or FINSENT_KAFKA / FINSENT_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import psycopg2  # noqa: E402
from kafka import KafkaConsumer  # noqa: E402

from deploy import localstack  # noqa: E402
from stream.config import load_settings  # noqa: E402
from stream.kafka_io import encode_item, ensure_topics, make_producer  # noqa: E402
from stream.schema import parse_message  # noqa: E402
from stream.process import WorkerProcess  # noqa: E402


def headlines(n: int, start: datetime):
    from stream.generate import generate_stream

    out = []
    for msg in generate_stream(start=start, duration=timedelta(hours=16), seed=11, tickers=300,
                               rate_per_min=max(1.0, n / 300.0)):
        out.append(parse_message(msg))
        if len(out) >= n:
            break
    return out


def article_count(settings) -> int:
    conn = psycopg2.connect(settings.dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(f'SELECT count(*) FROM "{settings.schema}".articles')
            return cur.fetchone()[0]
    finally:
        conn.close()


def peak_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def worker_pids(root: int) -> list[int]:
    pids = [root]
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().split(") ", 1)[1].split()[1]) == root:
                    pids.append(int(p.name))
            except (OSError, ValueError, IndexError):
                pass
    return pids


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--rate", type=float, default=50.0, help="steady load for the latency phase (items/s)")
    ap.add_argument("--steady-seconds", type=float, default=30.0)
    ap.add_argument("--keep", action="store_true", help="keep the benchmark schema and topics")
    args = ap.parse_args()

    base = load_settings()
    localstack.up(base, quiet=True)
    tag = uuid.uuid4().hex[:8]
    settings = base.replace(schema=f"bench_{tag}", topic_raw=f"bench{tag}.news.raw",
                            topic_scored=f"bench{tag}.news.scored",
                            topic_deadletter=f"bench{tag}.news.deadletter", app_id=f"finsent-bench-{tag}")
    from storage import migrate

    migrate.upgrade(settings.dsn, schema=settings.schema)
    ensure_topics(settings)
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=20)
    items = headlines(args.items + 1, start)
    warm, items = items[0], items[1:]
    print(f"items: {len(items)} generated headlines, {len({t for i in items for t in i.tickers})} tickers")

    # -- model only, same texts, same batch size as the worker
    from model.engine import load_engine

    engine = load_engine(settings.model, device=settings.device)
    texts = [i.model_text for i in items]
    engine.predict(texts[:256])
    t0 = time.perf_counter()
    for k in range(0, len(texts), settings.max_batch):
        engine.predict(texts[k:k + settings.max_batch])
    model_s = time.perf_counter() - t0
    model_rate = len(texts) / model_s
    print(f"model only ({engine.device}, batch {settings.max_batch}): {model_rate:,.0f} items/s")
    del engine

    log = Path(settings.state_dir) / f"bench-worker-{tag}.log"
    worker = WorkerProcess(settings, log, "--no-alerts").start()
    producer = make_producer(settings)
    try:
        producer.send(settings.topic_raw, key=warm.id.encode(), value=encode_item(warm)).get(timeout=30)
        deadline = time.monotonic() + 180
        while article_count(settings) < 1:
            if time.monotonic() > deadline or not worker.alive():
                raise SystemExit(f"worker did not start:\n{worker.log()}")
            time.sleep(0.2)

        # -- end to end, max speed
        t0 = time.perf_counter()
        for it in items:
            producer.send(settings.topic_raw, key=it.id.encode(), value=encode_item(it),
                          timestamp_ms=int(it.published_at.timestamp() * 1000))
        producer.flush()
        produce_s = time.perf_counter() - t0
        target = len(items) + 1
        while article_count(settings) < target:
            if not worker.alive():
                raise SystemExit(f"worker died:\n{worker.log()}")
            time.sleep(0.05)
        e2e_s = time.perf_counter() - t0
        e2e_rate = len(items) / e2e_s
        print(f"end to end: {e2e_rate:,.0f} items/s ({len(items)} items in {e2e_s:.1f}s; producing took {produce_s:.1f}s)")
        print(f"ratio end-to-end / model-only: {e2e_rate / model_rate:.2f}")

        # -- latency under steady load: produce -> news.scored (written after commit)
        sent_at: dict[str, float] = {}
        got_at: dict[str, float] = {}
        consumer = KafkaConsumer(settings.topic_scored, bootstrap_servers=settings.kafka_bootstrap,
                                 group_id=f"bench-lat-{tag}", auto_offset_reset="latest")
        consumer.poll(timeout_ms=2000)  # join and position at the end
        stop = threading.Event()

        def consume() -> None:
            while not stop.is_set():
                for recs in consumer.poll(timeout_ms=200).values():
                    now = time.perf_counter()
                    for r in recs:
                        got_at.setdefault(json.loads(r.value)["id"], now)

        th = threading.Thread(target=consume, daemon=True)
        th.start()
        n = int(args.rate * args.steady_seconds)
        t0 = time.perf_counter()
        base_t = datetime.now(timezone.utc)
        for k in range(n):
            due = t0 + k / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            msg = {"id": f"lat-{tag}-{k}", "published_at": (base_t + timedelta(seconds=k / args.rate)).isoformat(),
                   "title": items[k % len(items)].title, "tickers": list(items[k % len(items)].tickers)}
            sent_at[msg["id"]] = time.perf_counter()
            producer.send(settings.topic_raw, key=msg["id"].encode(), value=json.dumps(msg).encode())
            producer.flush() if k % 5 == 0 else None
        producer.flush()
        deadline = time.monotonic() + 60
        while len(got_at) < n and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        th.join()
        consumer.close()
        lat = sorted(got_at[i] - sent_at[i] for i in sent_at if i in got_at)
        if lat:
            p50 = statistics.median(lat)
            p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
            print(f"latency at {args.rate:.0f} items/s ({len(lat)}/{n} seen): p50 {p50 * 1000:.0f} ms, "
                  f"p99 {p99 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms")
        rss = [peak_rss_mib(p) for p in worker_pids(worker.proc.pid)]
        rss = max((r for r in rss if r), default=None)
        print(f"worker peak RSS: {rss:.0f} MiB" if rss else "worker peak RSS: n/a")
    finally:
        producer.close()
        worker.stop()
        if not args.keep:
            conn = psycopg2.connect(settings.dsn)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'DROP SCHEMA IF EXISTS "{settings.schema}" CASCADE')
            conn.close()
            from kafka.admin import KafkaAdminClient

            admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
            admin.delete_topics([settings.topic_raw, settings.topic_scored, settings.topic_deadletter])
            admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
