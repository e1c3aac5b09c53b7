#!/usr/bin/env python
"""Producer benchmark: CPU per 1,000 items of ``finsent replay ARCHIVE`` into news.raw, by compression.

The replay's own work (read the archive, map the columns, validate, link, encode, produce) runs in this
process exactly as the command runs it (``ArchiveSource`` -> ``KafkaSink``), on the first ``--items``
StockNet tweets, once per entry of ``--compression`` (interleaved, e.g. ``none,lz4,none,lz4``), each into a
fresh topic; beside it the Kafka broker's CPU.  Start-up (imports, the linker's tables) is left out: it is
the same for every run (about a second of CPU).  ``--root DIR``: the code of another checkout (before/after
with the same harness; ``--compression none`` only where that code cannot compress).

Usage: python bench/producer.py [--items 20000] [--compression none,lz4,none,lz4] [--root DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--compression", default="none,lz4,none,lz4", help="comma list of none, lz4, gzip")
    ap.add_argument("--root", type=Path, default=HERE.parent, help="checkout whose replay code runs")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    sys.path.insert(0, str(args.root.resolve()))  # finsent's modules from --root, the harness from here
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from kafka.admin import KafkaAdminClient
    from tqdm import tqdm

    from stream.base.config import load_settings
    from stream.core import ingest
    from stream.core.kafka_io import ensure_topics, make_producer
    from stream.messages.replay import Pacer
    from stream.sinks.kafka import KafkaSink
    from stream.sources.files import ArchiveSource
    from stream.wiring import build_linker

    sys.path.insert(0, str(HERE.parent))
    from bench.cpu import CpuMeter
    from bench.stocknet import write_archive
    from model.cpu import describe_cpu

    base = load_settings()
    archive, msgs = write_archive(args.items, Path(tempfile.mkdtemp(prefix="finsent-producer-bench-")))
    linker = build_linker(base)
    getattr(linker, "version", None)  # the reference's hash: once per process, like the tables
    print(f"input: {len(msgs)} StockNet tweets; code: {args.root.resolve()}; CPU: {describe_cpu()}; load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    res: dict = {"items": len(msgs), "cpu": describe_cpu(), "runs": []}
    for comp in [c.strip() for c in args.compression.split(",") if c.strip()]:
        s = base.replace(topic_raw=f"benchprod{uuid.uuid4().hex[:6]}.news.raw")
        ensure_topics(s, [s.topic_raw])
        source = ArchiveSource(archive, "auto", None, linker)
        sink = KafkaSink(s, [("finsent-replay", b"quiet")],
                         producer=make_producer(s, compression_type=None if comp == "none" else comp))
        meter = CpuMeter(s)
        meter.start()
        c0, t0 = time.process_time(), time.perf_counter()
        ingest.run(source, sink, Pacer(None), bar=lambda **kw: tqdm(disable=True))
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        split = meter.per_1000(len(msgs), wall, {"producer": cpu})
        print(f"compression {comp}: producer {split['producer']:,.0f} ms CPU per 1,000 items, Kafka "
              f"{split['Kafka']:,.0f} ms; {len(msgs) / wall:,.0f} items/s", flush=True)
        res["runs"].append({"compression": comp, "producer_ms_per_1000": split["producer"],
                            "kafka_ms_per_1000": split["Kafka"], "rate": len(msgs) / wall})
        admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
        admin.delete_topics([s.topic_raw])
        admin.close()
    for comp in sorted({r["compression"] for r in res["runs"]}):
        runs = [r for r in res["runs"] if r["compression"] == comp]
        print(f"{comp}: producer median {sorted(r['producer_ms_per_1000'] for r in runs)[len(runs) // 2]:,.0f} ms, "
              f"Kafka median {sorted(r['kafka_ms_per_1000'] for r in runs)[len(runs) // 2]:,.0f} ms per 1,000 items "
              f"({len(runs)} runs)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
