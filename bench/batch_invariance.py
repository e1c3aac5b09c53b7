#!/usr/bin/env python
"""Batch invariance of ``finsent classify``: the same texts scored one at a time and in micro-batches.

For each CPU path it runs the real command twice on the same real tweets, ``--batch-size 1`` and
``--batch-size B`` (default 64), and counts the topic and sentiment labels that differ and the largest
difference of ``sentiment_score`` and of any probability.  Issue 27: before per-row int8 scales the default
path (onnx-int8) changed 30 sentiment and 40 topic labels of 2,000 held-out tweets.

Usage::

    python bench/batch_invariance.py [--n 2000] [--batch-size 64] [--paths onnx-int8,onnx,bf16,fp32,int8]
        [--simulate-avx2] [--json FILE]

Texts: StockNet tweets (``../shared/data/streams``), a seeded sample after the first 60,000 lines (the
alert and replay benchmarks read the start of the file).  ``--simulate-avx2`` runs every command on a
simulated AVX2-only CPU (``bench/avx2_only.c`` LD_PRELOADed; needs gcc and the ``cpuid_fault`` flag).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from model.cpu import CPU_PATHS, cpu_features, describe_cpu
from model.data import default_data_dir

AVX2_FEATURES = "sse4_2,avx,avx2,fma,f16c"


def tweets(n: int, seed: int = 27) -> list[str]:
    path = default_data_dir() / "streams" / "stocknet_tweets.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line)["text"] for i, line in enumerate(f) if i >= 60_000]
    random.Random(seed).shuffle(rows)
    return rows[:n]


def avx2_env() -> dict[str, str]:
    """The environment of a simulated AVX2-only CPU (the CPUID shim, as bench/model_bench.py builds it)."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if not shutil.which("gcc") or " cpuid_fault" not in flags:
        raise SystemExit("--simulate-avx2 needs gcc and the CPU's cpuid_fault flag")
    lib = Path(tempfile.mkdtemp(prefix="finsent-avx2-")) / "avx2_only.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(lib), str(ROOT / "bench" / "avx2_only.c")],
                   check=True)
    return {"LD_PRELOAD": str(lib), "FINSENT_CPU_FEATURES": AVX2_FEATURES, "ATEN_CPU_CAPABILITY": "avx2",
            "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def classify(infile: Path, path: str, batch_size: int, env: dict[str, str]) -> tuple[list[dict], float]:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "stream.cli", "classify", str(infile), "--cpu-path", path,
                          "--batch-size", str(batch_size), "--chunk-size", "256"],
                         cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"finsent classify --cpu-path {path} failed:\n{out.stderr[-2000:]}")
    return [json.loads(line) for line in out.stdout.splitlines()], time.perf_counter() - started


def compare(a: list[dict], b: list[dict]) -> dict:
    probs = ("p_negative", "p_neutral", "p_positive", "topic_score")
    return {
        "topic_labels_changed": sum(x["topic"] != y["topic"] for x, y in zip(a, b)),
        "sentiment_labels_changed": sum(x["sentiment"] != y["sentiment"] for x, y in zip(a, b)),
        "max_score_diff": max(abs(x["sentiment_score"] - y["sentiment_score"]) for x, y in zip(a, b)),
        "max_prob_diff": max(abs(x[k] - y[k]) for x, y in zip(a, b) for k in probs
                             if x["topic"] == y["topic"] or k != "topic_score"),
        "identical_rows": sum(x == y for x, y in zip(a, b)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="tweets (default 2000)")
    ap.add_argument("--batch-size", type=int, default=64, help="the batched run's micro-batch (default 64)")
    ap.add_argument("--paths", default=None, help="comma list of CPU paths (default: all this CPU runs)")
    ap.add_argument("--simulate-avx2", action="store_true", help="on a simulated AVX2-only CPU")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)

    env = avx2_env() if args.simulate_avx2 else {}
    features = set(AVX2_FEATURES.split(",")) if args.simulate_avx2 else cpu_features()
    paths = args.paths.split(",") if args.paths else [
        p for p in CPU_PATHS if p != "bf16" or {"avx512_bf16", "amx_bf16"} & features]
    texts = tweets(args.n)
    print(f"# CPU: {describe_cpu()}{'; simulated AVX2-only (CPUID shim)' if args.simulate_avx2 else ''}")
    print(f"# {len(texts)} StockNet tweets, finsent classify --batch-size 1 against --batch-size {args.batch_size}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        infile = Path(tmp) / "in.jsonl"
        infile.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
        print(f"{'path':10s} {'topic chg':>9s} {'sent chg':>9s} {'max |d score|':>14s} {'max |d p|':>10s} "
              f"{'identical':>10s} {'s (bs 1/B)':>12s}")
        for path in paths:
            one, t1 = classify(infile, path, 1, env)
            many, tb = classify(infile, path, args.batch_size, env)
            r = compare(one, many)
            results[path] = {**r, "seconds_bs1": round(t1, 1), "seconds_bsB": round(tb, 1)}
            print(f"{path:10s} {r['topic_labels_changed']:9d} {r['sentiment_labels_changed']:9d} "
                  f"{r['max_score_diff']:14.2e} {r['max_prob_diff']:10.2e} {r['identical_rows']:10d} "
                  f"{t1:5.0f}/{tb:<5.0f}")
    if args.json:
        args.json.write_text(json.dumps({"cpu": describe_cpu(), "simulated_avx2": args.simulate_avx2,
                                         "n": len(texts), "batch_size": args.batch_size, "paths": results},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
