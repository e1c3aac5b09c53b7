#!/usr/bin/env python
"""Pipeline benchmark: real broker, real worker process, real database, one run.

Input: real text, the StockNet tweets (``../shared/data/streams/stocknet_tweets.jsonl.gz``;
generated headlines when that file is absent), each with an explicit id and its ticker.
Every mode uses its own schema and topics and a fresh worker process, and checks exact
counts (articles == items, 'all' bucket sum == items) after its run.  Modes, in one run:

* ``model``: model-only throughput: ``engine.predict`` in worker-sized batches, in this process;
* ``preloaded``: the topic is filled first, then a worker drains it (the producer is not part
  of the system under test); rate = items / (last commit - first commit) of the drain;
* ``concurrent``: a warmed-up worker, items produced at full speed meanwhile (by this process: the
  producer); rate = items / (first produce -> last row committed);
* ``inprocess``: the same items through ``finsent replay ARCHIVE --schema NAME`` (scored and stored in
  that process, no broker); rate = items / (first commit -> the command's exit);
* ``null``: ``preloaded`` with the zero-cost null model (``model/null.py``: fixed predictions;
  the checkpoint's tokenizer still runs unless ``--null-notok``): one worker process's ceiling;
* ``latency``: p50/p99 produce -> news.scored (written after the commit) at a steady
  ``--rate`` items/s and at ``--capacity-share`` (0.8) of the preloaded rate.

For every worker run it prints the per-stage breakdown in ms per 1,000 items (from the worker's
``finsent_stage_seconds_total`` Prometheus counters): consume (Faust delivering the batch),
decode+validate, link, tokenize, infer, build rows, DB, produce (news.scored), ack, and the
remainder (executor hand-off, event loop); and for every run, beside its rate, the CPU-ms per 1,000
items of each process: the producer, the worker(s) or the in-process replay, PostgreSQL, Kafka and the
rest of the machine (bench/cpu.py).

Usage: python bench/pipeline.py [--items 20000] [--modes model,preloaded,concurrent,inprocess,null,latency]
       [--max-batch 64] [--rate 50] [--steady-seconds 30] [--json FILE]
Needs the local stack (`finsent up`) or FINSENT_KAFKA / FINSENT_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import psycopg2
from kafka import KafkaConsumer

from bench import stocknet
from bench.cpu import CpuMeter, describe_split
from deploy import localstack
from model.cpu import describe_cpu
from stream.base.config import load_settings
from stream.core.kafka_io import ensure_topics, make_producer
from stream.core.pipeline import STAGES
from stream.messages.raw_message import model_text
from stream.process import WorkerProcess

STOCKNET = stocknet.STOCKNET
ALL_MODES = ("model", "preloaded", "concurrent", "inprocess", "null", "latency")
STAGE_LABELS = {"consume": "consume (Faust)", "parse": "decode+validate", "link": "link", "tokenize": "tokenize",
                "infer": "infer", "build": "build rows", "db": "DB", "alerts": "alerts",
                "produce": "produce", "ack": "ack"}


# --------------------------------------------------------------------------- input
def load_messages(n: int, path: Path = STOCKNET) -> tuple[list[dict], str]:
    """``n`` news.raw messages from the StockNet tweets (explicit ids), or generated headlines."""
    if path.is_file():
        out = stocknet.messages(n, path)
        if len(out) >= n:
            return out, f"StockNet tweets ({path.name})"
    from stream.synthetic.generate import generate_stream

    out = []
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=20)
    for k, msg in enumerate(generate_stream(start=start, duration=timedelta(hours=16), seed=11, tickers=300,
                                            rate_per_min=max(1.0, n / 300.0))):
        msg = dict(msg, id=f"gen{k}")
        out.append(msg)
        if len(out) >= n:
            break
    return out, "generated headlines (StockNet file not found)"


def encode(msg: dict) -> bytes:
    return json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def event_ms(msg: dict) -> int:
    return int(datetime.fromisoformat(msg["published_at"]).timestamp() * 1000)


# --------------------------------------------------------------------------- helpers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def counts(settings) -> tuple[int, int]:
    conn = psycopg2.connect(settings.dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(f'SELECT (SELECT count(*) FROM "{settings.schema}".articles), '
                        f'(SELECT coalesce(sum(articles), 0) FROM "{settings.schema}".sentiment_minute '
                        f"WHERE scope_kind = 'all')")
            a, b = cur.fetchone()
            return int(a), int(b)
    finally:
        conn.close()


def scrape(port: int) -> dict[str, float]:
    """The worker's stage seconds and received-record count from its Prometheus endpoint."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out: dict[str, float] = {}
    for line in body.splitlines():
        if line.startswith("finsent_stage_seconds_total{"):
            stage = line.split('stage="', 1)[1].split('"', 1)[0]
            out[stage] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("finsent_batch_size_sum "):
            out["_records"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("finsent_batches_total "):
            out["_batches"] = float(line.rsplit(" ", 1)[1])
    return out


def peak_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Run:
    """One benchmark mode: its own schema, topics, consumer group and worker process."""

    def __init__(self, base, name: str, engine: str, max_batch: int, max_wait: float | None, **changes) -> None:
        tag = "".join(c for c in name if c.isalnum())[:5].lower() + uuid.uuid4().hex[:6]
        changes.update(schema=f"bench_{tag}", topic_raw=f"bench{tag}.news.raw", topic_scored=f"bench{tag}.news.scored",
                       topic_deadletter=f"bench{tag}.news.deadletter", app_id=f"finsent-bench-{tag}",
                       max_batch=max_batch)
        if max_wait is not None:
            changes["max_wait_s"] = max_wait
        self.settings = base.replace(**changes)
        self.engine = engine
        self.tag = tag
        self.workers: list[WorkerProcess] = []
        self.ports: list[int] = []
        from storage import migrate

        migrate.upgrade(self.settings.dsn, schema=self.settings.schema)
        ensure_topics(self.settings)

    @property
    def worker(self) -> WorkerProcess | None:
        return self.workers[0] if self.workers else None

    @property
    def port(self) -> int:
        return self.ports[0]

    def start_worker(self, n: int = 1) -> WorkerProcess:
        """Start ``n`` worker processes in the run's consumer group (they split the partitions)."""
        for _ in range(n):
            port = free_port()
            log = Path(self.settings.state_dir) / f"bench-worker-{self.tag}-{len(self.workers)}.log"
            self.workers.append(WorkerProcess(self.settings, log, command=(str(ROOT / "bench" / "worker.py"),),
                                              FINSENT_BENCH_ENGINE=self.engine, FINSENT_METRICS_PORT=str(port)).start())
            self.ports.append(port)
        return self.workers[0]

    def produce(self, producer, msgs: list[dict]) -> float:
        t0 = time.perf_counter()
        for m in msgs:
            producer.send(self.settings.topic_raw, key=m["id"].encode(), value=encode(m), timestamp_ms=event_ms(m))
        producer.flush()
        return time.perf_counter() - t0

    def wait_observed(self, records: int, timeout: float = 900, each: bool = False,
                      total: float = float("inf")) -> tuple[float, dict]:
        """Poll the workers' metrics until ``records`` were handled (committed, produced, acked), summed
        (``each``: by every worker, or ``total`` by all of them); ``self.first`` = (time, metrics) when
        the first record was seen."""
        deadline = time.monotonic() + timeout
        self.first = None
        while True:
            m: dict[str, float] = {}
            least = float("inf")
            for port in self.ports:
                try:
                    got = scrape(port)
                except OSError:
                    got = {}
                least = min(least, got.get("_records", 0.0))
                for k, v in got.items():
                    m[k] = m.get(k, 0.0) + v
            now = time.perf_counter()
            if self.first is None and m.get("_records", 0) >= 1:
                self.first = (now, m)
            if (least if each else m.get("_records", 0)) >= records or m.get("_records", 0) >= total:
                return now, m
            for w in self.workers:
                if not w.alive():
                    raise SystemExit(f"worker died:\n{w.log()}")
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out at {m.get('_records', 0)}/{records} records:\n{self.worker.log()}")
            # each scrape costs the worker ~6 ms (py-spy: at 10 scrapes/s, 5.7% of a null-model worker's samples):
            # poll slowly until the end is near, then finely, so the window's ends stay precise (the wait for
            # the first batch is always fine)
            goal = min(records, total)
            done = (least if each else m.get("_records", 0)) / max(1.0, goal)
            time.sleep(0.5 if goal > 1 and done < 0.9 else 0.05)

    def close(self, keep: bool) -> None:
        for w in self.workers:
            w.stop()
        if keep:
            return
        from bench.replay import drop

        drop(self.settings)


def start_profile(folder: Path | None, label: str, pid: int):
    """py-spy (a dev tool: pip install py-spy) sampling the worker, collapsed stacks to FOLDER/LABEL.txt."""
    if folder is None:
        return None
    import shutil
    import subprocess

    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / (label.split(" ")[0] + ".txt")
    return subprocess.Popen([spy, "record", "-p", str(pid), "-r", "200", "-f", "raw", "-o", str(out), "--nonblocking",
                             "--threads"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profile(spy) -> None:
    if spy is not None:
        import signal

        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)


def breakdown(before: dict, after: dict, items: int, wall_s: float) -> dict[str, float]:
    """ms per 1,000 items for each stage, the remainder and the wall time."""
    out = {s: 1e6 * (after.get(s, 0.0) - before.get(s, 0.0)) / items for s in STAGES}
    wall = 1e6 * wall_s / items
    out["other"] = wall - sum(out.values())
    out["wall"] = wall
    return out


def print_breakdowns(rows: dict[str, dict[str, float]]) -> None:
    names = list(rows)
    print("\nper-stage breakdown, ms per 1,000 items (worker's stage counters; wall = 1,000 / rate):")
    print(f"  {'stage':<18}" + "".join(f"{n:>14}" for n in names))
    for s in (*STAGES, "other", "wall", "worker CPU"):
        label = STAGE_LABELS.get(s, s)
        print(f"  {label:<18}" + "".join(f"{rows[n].get(s, 0.0):>14.1f}" for n in names))
    print("  (the stages overlap: the DB thread commits batch k while the model thread prepares batch k+1 and the\n"
          "   event loop delivers batch k-1, so their sum can exceed the wall time; 'other' is then negative)")


# --------------------------------------------------------------------------- modes
def mode_model(settings, msgs: list[dict]) -> dict:
    from model.engine import load_engine

    engine = load_engine(settings.model, device=settings.device)
    texts = [model_text(m["title"]) for m in msgs]
    engine.predict(texts[:256])
    tok = 0.0
    t0 = time.perf_counter()
    for k in range(0, len(texts), settings.max_batch):
        engine.predict(texts[k:k + settings.max_batch])
        tok += engine.last_tokenize_s
    secs = time.perf_counter() - t0
    rate = len(texts) / secs
    print(f"model only ({engine.device}, batch {settings.max_batch}): {rate:,.0f} items/s "
          f"(tokenize {1e6 * tok / len(texts):.1f} ms, infer {1e6 * (secs - tok) / len(texts):.1f} ms per 1,000)")
    return {"rate": rate, "tokenize": 1e6 * tok / len(texts), "infer": 1e6 * (secs - tok) / len(texts)}


def mode_drain(base, msgs, engine: str, args, label: str, workers: int = 1, **changes) -> dict:
    """Pre-loaded: fill the topic, then start the worker(s) and time the drain."""
    run = Run(base, label, engine, args.max_batch, args.max_wait, **changes)
    producer = make_producer(run.settings)
    try:
        produce_s = run.produce(producer, msgs)
        run.start_worker(workers)
        # the window: first batch fully handled -> last batch fully handled (worker's own counters)
        t_first, m0 = run.wait_observed(1, timeout=300, each=True, total=len(msgs))  # all workers have partitions
        fell_back = m0.get("_records", 0) >= len(msgs)
        if fell_back:  # drained before every worker had joined: time it from the first batch (CPU not sampled)
            print(f"  ({label}: drained before all {workers} workers joined; use more items)")
            t_first, m0 = run.first
        meter = CpuMeter(run.settings, **{f"worker {k}" if k else "worker": w.pid for k, w in enumerate(run.workers)})
        meter.start()
        spy = start_profile(args.profile, label, run.worker.pid)
        t_end, m1 = run.wait_observed(len(msgs))
        wall = t_end - t_first
        items = int(m1["_records"] - m0["_records"])
        split = meter.per_1000(items, wall)
        stop_profile(spy)
        n, buckets = counts(run.settings)
        # the records counter includes re-deliveries (a partition moved to a joining worker re-reads what
        # the first had stored but not yet committed in Kafka): give the stores up to 60 s to settle
        settle = time.monotonic() + 60
        while (n, buckets) != (len(msgs), len(msgs)) and time.monotonic() < settle:
            time.sleep(0.5)
            n, buckets = counts(run.settings)
            if (n, buckets) == (len(msgs), len(msgs)):
                print(f"  ({label}: counts settled {60 - (settle - time.monotonic()):.1f}s after the records "
                      "counter reached the input: re-deliveries after a rebalance)")
        rate = items / wall
        exact = n == len(msgs) and buckets == len(msgs)
        rss = peak_rss_mib(run.worker.pid)
        print(f"{label}: {rate:,.0f} items/s ({items} items drained in {wall:.1f}s after the first batch; "
              f"filling the topic took {produce_s:.1f}s); counts {'exact' if exact else 'WRONG'} "
              f"({n} articles, {buckets} in 'all' buckets); mean batch "
              f"{(m1.get('_records', 0) - m0.get('_records', 0)) / max(1, m1.get('_batches', 0) - m0.get('_batches', 0)):.1f}"
              + (f"; worker peak RSS {rss:.0f} MiB" if rss else ""))
        if workers > 1:  # the workers together
            split = {"worker": sum(v for k, v in split.items() if k.startswith("worker")),
                     **{k: v for k, v in split.items() if not k.startswith("worker")}}
        cpu_ms = 0.0 if fell_back else split["worker"]
        if cpu_ms > 0:  # (0 when the window fell back to the first batch: CPU not sampled there)
            print(f"  worker CPU: {cpu_ms:.0f} ms per 1,000 items (all threads; {1e6 / cpu_ms:,.0f} items per "
                  "CPU-second)")
        split = {} if fell_back else split
        if split:
            print("  " + describe_split(split))
        stages = breakdown(m0, m1, items, wall)
        stages["worker CPU"] = cpu_ms
        return {"rate": rate, "exact": exact, "stages": stages, "rss_mib": rss, "cpu_ms_per_1000": cpu_ms,
                "cpu_split": split, "workers": workers}
    finally:
        producer.close()
        run.close(args.keep)


def mode_concurrent(base, msgs, args) -> dict:
    run = Run(base, "concurrent", "model", args.max_batch, args.max_wait)
    producer = make_producer(run.settings)
    try:
        warm = dict(msgs[0], id="warm-up")
        run.start_worker()
        run.produce(producer, [warm])
        _, m0 = run.wait_observed(1, timeout=300)
        meter = CpuMeter(run.settings, worker=run.worker.pid)
        meter.start()
        t0, c0 = time.perf_counter(), time.process_time()
        produce_s = run.produce(producer, msgs)
        produce_cpu = time.process_time() - c0  # this process's producer (kafka-python: its I/O thread too)
        t_end, m1 = run.wait_observed(len(msgs) + 1)
        n, buckets = counts(run.settings)
        wall = t_end - t0
        split = meter.per_1000(len(msgs), wall, {"producer": produce_cpu})
        rate = len(msgs) / wall
        exact = n == len(msgs) + 1 and buckets == len(msgs) + 1
        print(f"concurrent: {rate:,.0f} items/s ({len(msgs)} items, first produce -> last commit {wall:.1f}s; "
              f"producing took {produce_s:.1f}s); counts {'exact' if exact else 'WRONG'}\n  {describe_split(split)}")
        return {"rate": rate, "exact": exact, "stages": breakdown(m0, m1, len(msgs), wall), "cpu_split": split}
    finally:
        producer.close()
        run.close(args.keep)


def mode_inprocess(base, msgs: list[dict], args) -> dict:
    """The in-process path: ``finsent replay ARCHIVE --schema NAME`` on the same items (bench/replay.py)."""
    import tempfile
    from types import SimpleNamespace

    from bench.replay import path_inprocess

    folder = Path(tempfile.mkdtemp(prefix="finsent-pipeline-bench-"))
    archive = folder / "items.jsonl"
    archive.write_text("".join(json.dumps(m, ensure_ascii=False) + "\n" for m in msgs), encoding="utf-8")
    opts = SimpleNamespace(root=ROOT, taskset=None, keep=args.keep)
    return path_inprocess(opts, base, archive, len(msgs), folder, None)


def steady_latency(run: Run, producer, msgs, rate: float, seconds: float) -> dict:
    sent_at: dict[str, float] = {}
    got_at: dict[str, float] = {}
    consumer = KafkaConsumer(run.settings.topic_scored, bootstrap_servers=run.settings.kafka_bootstrap,
                             group_id=f"bench-lat-{run.tag}-{rate:.0f}", auto_offset_reset="latest")
    consumer.poll(timeout_ms=2000)  # join and position at the end
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            for recs in consumer.poll(timeout_ms=100).values():
                now = time.perf_counter()
                for r in recs:
                    got_at.setdefault(json.loads(r.value)["id"], now)

    th = threading.Thread(target=consume, daemon=True)
    th.start()
    n = int(rate * seconds)
    t0 = time.perf_counter()
    base_t = datetime.now(UTC)
    tag = uuid.uuid4().hex[:6]
    for k in range(n):
        due = t0 + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        src = msgs[k % len(msgs)]
        msg = {"id": f"lat-{tag}-{k}", "published_at": (base_t + timedelta(seconds=k / rate)).isoformat(),
               "title": src["title"], "tickers": src["tickers"]}
        sent_at[msg["id"]] = time.perf_counter()
        producer.send(run.settings.topic_raw, key=msg["id"].encode(), value=encode(msg))
        if k % max(1, int(rate / 50)) == 0:
            producer.flush()  # keep the producer's linger from adding to what we measure
    producer.flush()
    achieved = n / (time.perf_counter() - t0)
    deadline = time.monotonic() + 60
    while len(got_at) < n and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    th.join()
    consumer.close()
    lat = sorted(got_at[i] - sent_at[i] for i in sent_at if i in got_at)
    if not lat:
        return {"rate": rate, "seen": 0, "sent": n}
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
    print(f"latency at {rate:,.0f} items/s (offered {achieved:,.0f}/s; {len(lat)}/{n} seen): p50 {p50 * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms")
    return {"rate": rate, "offered": achieved, "seen": len(lat), "sent": n, "p50_ms": p50 * 1000,
            "p99_ms": p99 * 1000, "max_ms": lat[-1] * 1000}


def mode_latency(base, msgs, args, capacity: float | None) -> list[dict]:
    run = Run(base, "latency", "model", args.max_batch, args.max_wait)
    producer = make_producer(run.settings)
    out = []
    try:
        run.start_worker()
        run.produce(producer, [dict(msgs[0], id="warm-up")])
        run.wait_observed(1, timeout=300)
        out.append(steady_latency(run, producer, msgs, args.rate, args.steady_seconds))
        if capacity:
            out.append(steady_latency(run, producer, msgs, args.capacity_share * capacity, args.steady_seconds))
    finally:
        producer.close()
        run.close(args.keep)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--modes", default=",".join(ALL_MODES), help=f"comma list of {', '.join(ALL_MODES)}")
    ap.add_argument("--max-batch", type=int, default=None, help="worker max_batch (default: settings)")
    ap.add_argument("--max-wait", type=float, default=None, help="worker max_wait_s (default: settings)")
    ap.add_argument("--null-items", type=int, default=None, help="items for the null-model mode (default --items)")
    ap.add_argument("--null-notok", action="store_true", help="null model without tokenisation")
    ap.add_argument("--null-workers", default="1", metavar="N[,N...]",
                    help="null-model drains with this many worker processes each (they split the partitions)")
    ap.add_argument("--rate", type=float, default=50.0, help="steady load for the latency mode (items/s)")
    ap.add_argument("--capacity-share", type=float, default=0.8, help="second latency load, share of preloaded rate")
    ap.add_argument("--steady-seconds", type=float, default=30.0)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--profile", type=Path, help="py-spy the worker of each drain mode, collapsed stacks in this folder "
                                                 "(slows the worker: not for the figures)")
    ap.add_argument("--keep", action="store_true", help="keep the benchmark schemas and topics")
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(ALL_MODES)
    if unknown:
        ap.error(f"unknown mode(s): {', '.join(sorted(unknown))}")

    base = load_settings()
    if args.max_batch is None:
        args.max_batch = base.max_batch
    base = base.replace(max_batch=args.max_batch)
    st = localstack.status(base)
    if not (st["kafka_ok"] and st["postgres_ok"]):  # a running stack is used as it is
        localstack.up(base, quiet=True)
    msgs, what = load_messages(args.items)
    print(f"input: {len(msgs)} {what}; max_batch {args.max_batch}, max_wait "
          f"{args.max_wait if args.max_wait is not None else base.max_wait_s}s; CPU: {describe_cpu()}")
    res: dict = {"items": len(msgs), "input": what, "max_batch": args.max_batch, "cpu": describe_cpu()}
    stages: dict[str, dict[str, float]] = {}
    if "model" in modes:
        res["model"] = mode_model(base, msgs)
    if "preloaded" in modes:
        res["preloaded"] = mode_drain(base, msgs, "model", args, "preloaded")
        stages["preloaded"] = res["preloaded"]["stages"]
    if "concurrent" in modes:
        res["concurrent"] = mode_concurrent(base, msgs, args)
        stages["concurrent"] = res["concurrent"]["stages"]
    if "inprocess" in modes:
        res["inprocess"] = mode_inprocess(base, msgs, args)
    if "null" in modes:
        nmsgs = msgs if args.null_items is None else load_messages(args.null_items)[0]
        engine = "null-notok" if args.null_notok else "null"
        for k, n in enumerate(int(x) for x in args.null_workers.split(",")):
            label = f"null model ({'no ' if args.null_notok else ''}tokenize{f', {n} workers' if n > 1 else ''})"
            got = mode_drain(base, nmsgs, engine, args, label, workers=n)
            res["null" if k == 0 else f"null x{n}"] = got
            stages[label.replace("null model (", "null (")] = got["stages"]
    if "latency" in modes:
        cap = res.get("preloaded", {}).get("rate")
        res["latency"] = mode_latency(base, msgs, args, cap)
    if stages:
        print_breakdowns(stages)
    if "model" in res:
        m = res["model"]["rate"]
        for k in ("preloaded", "concurrent", "inprocess"):
            if k in res:
                print(f"ratio {k} / model-only: {res[k]['rate'] / m:.2f}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
