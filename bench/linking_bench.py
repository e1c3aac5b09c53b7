#!/usr/bin/env python
"""Entity-linking benchmark: linking cost per item next to the model's, in the same run.

Over 30,000 real headlines from ../shared/data (all of tfns_train.csv and
topic_train.csv, then StockNet tweets to make up the count) it measures

* ``link``: ``Linker.link(text)`` alone (the shipped table, Aho-Corasick), µs/item;
* ``parse``: the worker's whole validation step ``parse_record(bytes)`` with the
  linker (JSON decode, checks, linking, NewsItem), µs/item, and the same with a
  linker that finds nothing, so the difference is what linking adds inside the worker;
* ``model``: the shipped model through ``model.engine`` on this machine's best
  path (as the worker runs it: calls of 64 texts), ms/item, on the first
  ``--model-n`` texts (the model is ~1000x slower, so fewer texts suffice);

and prints linking as a share of the model's time per item.  Each timing is the
median of ``--repeat`` passes, after one warm-up pass.

Usage::

    .venv/bin/python bench/linking_bench.py [--n 30000] [--model-n 1024] [--repeat 3] [--device cpu]

Note the CPU with any CPU figure: ``grep -o avx512_bf16 /proc/cpuinfo | head -1``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.cpu import describe_cpu
from model.engine import load_engine
from stream.linking import default_linker
from stream.messages.raw_message import InvalidRecord, parse_record

DATA = ROOT.parent / "shared" / "data"


def headlines(n: int) -> list[str]:
    texts: list[str] = []
    for name in ("sentiment/tfns_train.csv", "topic/topic_train.csv"):
        with open(DATA / name, newline="", encoding="utf-8") as f:
            texts += [r[0] for r in list(csv.reader(f))[1:] if r and r[0].strip()]
    if len(texts) < n:
        with gzip.open(DATA / "streams" / "stocknet_tweets.jsonl.gz", "rt", encoding="utf-8") as f:
            for line in f:
                texts.append(json.loads(line)["text"])
                if len(texts) >= n:
                    break
    return texts[:n]


def timed(fn, items, repeat: int) -> float:
    """Median seconds per item over ``repeat`` passes (after a warm-up pass)."""
    for x in items[: min(len(items), 2000)]:
        fn(x)
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for x in items:
            fn(x)
        runs.append((time.perf_counter() - t0) / len(items))
    return statistics.median(runs)


class _NoLinks:
    """A linker that finds nothing: parse_record's cost without linking."""

    def link(self, text, at=None):
        return []

    def canonical(self, symbol):
        return None

    def in_watchlist(self, ticker):
        return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30_000)
    ap.add_argument("--model-n", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    texts = headlines(args.n)
    t0 = time.perf_counter()
    linker = default_linker()
    build_s = time.perf_counter() - t0
    link_s = timed(linker.link, texts, args.repeat)
    linked = sum(1 for t in texts if linker.link(t))
    records = [json.dumps({"published_at": "2024-03-04T14:00:00Z", "title": t}).encode() for t in texts]
    nolinks = _NoLinks()

    def parse(raw, extractor):
        try:
            return parse_record(raw, extractor=extractor)
        except InvalidRecord:  # a few tweets are only a URL: dead-lettered by the worker too
            return None

    parse_s = timed(lambda r: parse(r, linker), records, args.repeat)
    parse0_s = timed(lambda r: parse(r, nolinks), records, args.repeat)

    engine = load_engine(None, device=args.device)
    sample = texts[: args.model_n]
    batches = [sample[i:i + 64] for i in range(0, len(sample), 64)]
    engine.predict(batches[0])
    runs = []
    for _ in range(max(1, min(args.repeat, 2))):
        t0 = time.perf_counter()
        for b in batches:
            engine.predict(b)
        runs.append((time.perf_counter() - t0) / len(sample))
    model_s = statistics.median(runs)

    cpu = describe_cpu()
    res = {
        "texts": len(texts), "texts_with_a_ticker": linked, "table_build_s": round(build_s, 3),
        "link_us_per_item": round(link_s * 1e6, 2), "parse_us_per_item": round(parse_s * 1e6, 2),
        "parse_without_linking_us_per_item": round(parse0_s * 1e6, 2),
        "linking_in_parse_us_per_item": round((parse_s - parse0_s) * 1e6, 2),
        "model_ms_per_item": round(model_s * 1e3, 3), "model_texts": len(sample), "model_device": str(engine.device),
        "link_share_of_model": round(link_s / model_s, 5),
        "cpu": cpu,
    }
    print(f"{len(texts)} real headlines, {linked} with at least one ticker; table built in {build_s:.2f}s")
    print(f"link             {res['link_us_per_item']:8.1f} µs/item")
    print(f"parse + link     {res['parse_us_per_item']:8.1f} µs/item   (parse alone {res['parse_without_linking_us_per_item']:.1f})")
    print(f"model            {res['model_ms_per_item'] * 1000:8.1f} µs/item   ({res['model_ms_per_item']:.2f} ms/item on "
          f"{res['model_device']}, calls of 64, {len(sample)} texts)")
    print(f"linking = {100 * res['link_share_of_model']:.2f}% of the model's time per item  [{res['cpu']}]")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
