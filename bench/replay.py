#!/usr/bin/env python
"""Replay benchmark: real StockNet tweets through both replay paths, beside the model alone, in one run.

* ``model``: the model alone on the same texts (a spread sample of ``--model-items``), as the batch
  step calls it (``predict_per_ticker``: the headline and each linked ticker, batches of 64), in this
  process; measured before and after every path: a path's ratio is to the mean of the two beside it
  (the machine is shared: its load moves between runs);
* ``kafka``: ``finsent replay ARCHIVE`` into news.raw while one warmed-up ``finsent worker`` (alerts on,
  as shipped) scores and stores it; rate = items / (replay start -> last article committed); the producer
  shares the cores with the worker, PostgreSQL and Kafka;
* ``inprocess``: ``finsent replay ARCHIVE --schema NAME [--jobs N]`` (alerts on); rate = items / (first
  article committed -> the command's exit), so the model's load is left out as it is for the worker.

Each path writes into its own schema and topics and checks exact counts (articles == items, 'all'
buckets == items).  Beside each rate: CPU-ms per 1,000 items of every process (the producer, the
worker or the in-process replay with its model processes, PostgreSQL, Kafka, the rest of the machine).
``--root DIR`` runs the ``finsent`` commands of another checkout (e.g. ``git archive`` of main) with this
harness: before/after figures from the same script.  ``--simulate-avx2``: every process of ours runs on a
simulated AVX2-only CPU (``bench/avx2.py``).  ``--taskset CPUS``: the commands run pinned to these CPUs.

Usage: python bench/replay.py [--items 100000] [--model-items 10000] [--paths kafka,inprocess]
       [--jobs 1,2] [--root DIR] [--simulate-avx2] [--taskset 0] [--json FILE] [--keep]
Needs the local stack (`finsent up`) or FINSENT_KAFKA / FINSENT_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
if "--simulate-avx2" in sys.argv:
    from bench.avx2 import simulate

    simulate()

import psycopg2

from bench.cpu import CpuMeter, describe_split, tree_cpu_seconds
from bench.stocknet import write_archive
from model.cpu import describe_cpu
from stream.base.config import load_settings
from stream.core.kafka_io import ensure_topics
from stream.process import settings_env

PATHS = ("kafka", "inprocess")


def model_only(settings, msgs: list[dict], n: int, batch: int = 64) -> dict:
    """Items/s and CPU per 1,000 items of the model alone on a spread sample of ``msgs`` (as the batch step
    calls it: the headline and each ticker's entity query)."""
    from model.engine import load_engine
    from model.ticker_sentiment import predict_per_ticker
    from stream.linking import default_linker
    from stream.messages.raw_message import parse_message

    step = max(1, len(msgs) // max(1, n))
    sample = msgs[::step][:n]
    linker = default_linker()
    items = [parse_message(m, extractor=linker) for m in sample]
    texts, links, tickers = ([it.model_text for it in items], [it.ticker_links for it in items],
                             [it.tickers for it in items])
    engine = load_engine(settings.model, device=settings.device)
    predict_per_ticker(engine, texts[:batch], links[:batch], tickers[:batch])  # warm-up
    c0, t0 = time.process_time(), time.perf_counter()
    for k in range(0, len(texts), batch):
        predict_per_ticker(engine, texts[k:k + batch], links[k:k + batch], tickers[k:k + batch])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rate = len(texts) / wall
    print(f"model only ({engine.device}, {getattr(engine, 'dtype', '')}, batch {batch}, {len(texts)} of the tweets): "
          f"{rate:,.0f} items/s, CPU {1e6 * cpu / len(texts):,.0f} ms per 1,000 items", flush=True)
    return {"rate": rate, "cpu_ms_per_1000": 1e6 * cpu / len(texts), "items": len(texts)}


# --------------------------------------------------------------------------- helpers
def scalar(settings, sql: str):
    conn = psycopg2.connect(settings.dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]
    finally:
        conn.close()


def counts(settings) -> tuple[int, int]:
    s = settings.schema
    return (int(scalar(settings, f'SELECT count(*) FROM "{s}".articles')),
            int(scalar(settings, f"SELECT coalesce(sum(articles), 0) FROM \"{s}\".sentiment_minute "
                                 "WHERE scope_kind = 'all'")))


def wait_rows(settings, goal: int, proc=None, timeout: float = 7200, fine: float = 0.05) -> float:
    """perf_counter() when the schema holds ``goal`` articles (polled; finely near the end)."""
    deadline = time.monotonic() + timeout
    sql = f'SELECT count(*) FROM "{settings.schema}".articles' if goal > 1 else \
        f'SELECT count(*) FROM (SELECT 1 FROM "{settings.schema}".articles LIMIT 1) x'
    while True:
        try:
            n = int(scalar(settings, sql))
        except psycopg2.Error:
            n = 0  # the schema is not made yet
        if n >= goal:
            return time.perf_counter()
        if proc is not None and proc.poll() is not None and proc.returncode != 0:
            raise SystemExit(f"{proc.args} failed ({proc.returncode})")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out at {n}/{goal} articles")
        time.sleep(fine if goal <= 1 or n > 0.97 * goal else 1.0)


def finsent_cmd(args, *cli: str) -> list[str]:
    cmd = [sys.executable, "-m", "stream.cli", *cli]
    return (["taskset", "-c", args.taskset] if args.taskset else []) + cmd


def spawn(args, settings, *cli: str, log: Path) -> subprocess.Popen:
    env = settings_env(settings, PYTHONPATH=str(args.root))
    if args.root != ROOT:  # an older checkout knows no feed catalogue: its settings reject the section
        doc = json.loads(env["FINSENT_SETTINGS_JSON"])
        doc.pop("feeds", None)
        env["FINSENT_SETTINGS_JSON"] = json.dumps(doc)
    with open(log, "ab") as out:
        return subprocess.Popen(finsent_cmd(args, *cli), cwd=args.root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def reap(proc: subprocess.Popen) -> float:
    """Wait for a child; its CPU seconds (and its waited-for children's: the model processes)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


class Target:
    """One path's own schema, topics and consumer group."""

    def __init__(self, base, name: str) -> None:
        tag = name[:4] + uuid.uuid4().hex[:6]
        self.settings = base.replace(schema=f"bench_{tag}", topic_raw=f"bench{tag}.news.raw",
                                     topic_scored=f"bench{tag}.news.scored",
                                     topic_deadletter=f"bench{tag}.news.deadletter", app_id=f"finsent-bench-{tag}")
        self.tag = tag

    def drop(self) -> None:
        drop(self.settings)


def drop(settings) -> None:
    """A benchmark's own schema and topics, gone."""
    conn = psycopg2.connect(settings.dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{settings.schema}" CASCADE')
    conn.close()
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        existing = set(admin.list_topics())
        gone = [t for t in (settings.topic_raw, settings.topic_scored, settings.topic_deadletter) if t in existing]
        if gone:
            admin.delete_topics(gone)
    finally:
        admin.close()


def report(label: str, items: int, wall: float, exact: tuple[int, int], split: dict, extra: str = "") -> dict:
    rate = items / wall
    ok = exact == (items, items)
    print(f"{label}: {rate:,.1f} items/s ({items} items in {wall:.1f}s{extra}); counts "
          f"{'exact' if ok else 'WRONG'} ({exact[0]} articles, {exact[1]} in 'all' buckets)\n  {describe_split(split)}",
          flush=True)
    return {"rate": rate, "wall_s": wall, "exact": ok, "cpu_split": split}


# --------------------------------------------------------------------------- paths
def path_kafka(args, base, archive: Path, items: int, folder: Path) -> dict:
    """The archive into news.raw while one warmed-up worker drains it."""
    t = Target(base, "kafka")
    s = t.settings
    ensure_topics(s)
    warm = folder / "warm.jsonl"
    warm.write_text(json.dumps({"id": "warm-up", "published_at": "2013-12-31T00:00:00Z", "title": "$AAPL warm-up",
                                "tickers": ["AAPL"]}) + "\n")
    worker = spawn(args, s, "worker", log=folder / f"worker-{t.tag}.log")
    try:
        warmer = spawn(args, s, "replay", str(warm), log=folder / f"warm-{t.tag}.log")
        reap(warmer)
        wait_rows(s, 1, worker, timeout=600)
        meter = CpuMeter(s, worker=worker.pid)
        meter.start()
        t0 = time.perf_counter()
        producer = spawn(args, s, "replay", str(archive), log=folder / f"replay-{t.tag}.log")
        producer_cpu = reap(producer)
        produced = time.perf_counter() - t0
        if producer.returncode != 0:
            raise SystemExit(f"replay failed: {(folder / f'replay-{t.tag}.log').read_text()[-3000:]}")
        t_end = wait_rows(s, items + 1, worker)
        split = meter.per_1000(items, t_end - t0, {"producer": producer_cpu})
        n, b = counts(s)
        return report("replay into news.raw + one worker", items, t_end - t0, (n - 1, b - 1), split,
                      f"; producing took {produced:.1f}s")
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
        if not args.keep:
            t.drop()


def path_inprocess(args, base, archive: Path, items: int, folder: Path, jobs: int | None) -> dict:
    t = Target(base, f"inp{jobs or 1}")
    s = t.settings
    try:
        meter = CpuMeter(s)
        t0 = time.perf_counter()
        cli = ["replay", str(archive), "--schema", s.schema] + (["--jobs", str(jobs)] if jobs else [])
        proc = spawn(args, s, *cli, log=folder / f"inprocess-{t.tag}.log")
        t_first = wait_rows(s, 1, proc, timeout=600)
        meter.start()  # the window starts at the first commit: the model's load is left out
        started = tree_cpu_seconds(proc.pid)  # the replay and its model processes until then
        cpu = reap(proc) - started
        t_end = time.perf_counter()
        if proc.returncode != 0:
            raise SystemExit(f"replay --schema failed: {(folder / f'inprocess-{t.tag}.log').read_text()[-3000:]}")
        split = meter.per_1000(items, t_end - t_first, {"replay": cpu})
        label = f"in-process replay{f' --jobs {jobs}' if jobs else ''}"
        return report(label, items, t_end - t_first, counts(s), split,
                      f" after the first commit; whole command {t_end - t0:.1f}s")
    finally:
        if not args.keep:
            t.drop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--model-items", type=int, default=10_000, help="model-only sample of the same tweets")
    ap.add_argument("--paths", default=",".join(PATHS), help=f"comma list of {', '.join(PATHS)}")
    ap.add_argument("--jobs", default="", metavar="N[,N...]", help="in-process runs with --jobs N each "
                                                                     "(default: one run without the option)")
    ap.add_argument("--root", type=Path, default=ROOT, help="checkout whose finsent commands run (default: this one)")
    ap.add_argument("--simulate-avx2", action="store_true", help="a simulated AVX2-only CPU (bench/avx2.py)")
    ap.add_argument("--taskset", help="pin the finsent commands to these CPUs (taskset -c)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--keep", action="store_true", help="keep the benchmark schemas and topics")
    args = ap.parse_args()
    args.root = args.root.resolve()
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if set(paths) - set(PATHS):
        ap.error(f"unknown path(s): {', '.join(sorted(set(paths) - set(PATHS)))}")
    base = load_settings()
    folder = Path(tempfile.mkdtemp(prefix="finsent-replay-bench-"))
    archive, msgs = write_archive(args.items, folder)
    items = len(msgs)
    cpu = describe_cpu() + (" (simulated AVX2-only: bench/avx2.py)" if args.simulate_avx2 else "")
    print(f"input: {items} StockNet tweets; code: {args.root}; CPU: {cpu}; load average "
          f"{os.getloadavg()[0]:.1f}" + (f"; pinned to CPUs {args.taskset}" if args.taskset else ""), flush=True)
    res: dict = {"items": items, "cpu": cpu, "root": str(args.root), "taskset": args.taskset}
    runs = [("kafka", None)] if "kafka" in paths else []
    if "inprocess" in paths:
        runs += [("inprocess", int(j)) for j in args.jobs.split(",") if j.strip()] or [("inprocess", None)]
    models = [model_only(base, msgs, args.model_items)]
    for path, jobs in runs:  # each path between two model-only runs: its ratio is to their mean (side by side)
        key = path + (f" --jobs {jobs}" if jobs else "")
        res[key] = path_kafka(args, base, archive, items, folder) if path == "kafka" else \
            path_inprocess(args, base, archive, items, folder, jobs)
        models.append(model_only(base, msgs, args.model_items))
        beside = (models[-2]["rate"] + models[-1]["rate"]) / 2
        res[key].update(model_beside=beside, ratio=res[key]["rate"] / beside)
    model = sum(m["rate"] for m in models) / len(models)
    model_cpu = sorted(m["cpu_ms_per_1000"] for m in models)[len(models) // 2]
    res["model"] = {"rate": model, "cpu_ms_per_1000": model_cpu, "runs": models}
    rates = ", ".join(f"{m['rate']:,.0f}" for m in models)
    print(f"\nmodel only: {rates} items/s (CPU, median {model_cpu:,.0f} ms per 1,000 items); load average "
          f"{os.getloadavg()[0]:.1f}")
    for key, got in res.items():
        if isinstance(got, dict) and "ratio" in got:
            line = f"ratio {key} / model-only beside it ({got['model_beside']:,.0f} items/s): {got['ratio']:.2f}"
            producer = got["cpu_split"].get("producer")
            if producer is not None:
                line += f"; producer CPU {producer:,.0f} ms per 1,000 items = {producer / model_cpu:.1%} of the model's"
            print(line)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
