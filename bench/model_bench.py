#!/usr/bin/env python
"""Model benchmark: the shipped finsent model vs a naive BERT-base classifier.

On the same 2,048 headlines (Twitter Financial News texts from ../shared/data,
or generated ones when the data is absent) it prints:

* throughput (items/s, text in -> predictions out, tokenization included,
  model load excluded) of the shipped checkpoint through ``model.engine`` on
  this machine's best path (CPU: bf16 where native, length-sorted micro-batches
  of 16, dynamic padding; CUDA: resident fp16, warmed up, pinned inputs), for
  calls of 64 texts (the stream worker's batch) and one call with all texts;
* the same for a BERT-base-sized classifier (FinBERT's shape: 12 layers, 768
  hidden, 3 labels, random weights) run the naive way: plain transformers,
  eager attention, fp32, batches of 32 in input order padded to their
  longest, ``torch.no_grad``;
* the ratio, and p50/p99 latency of the shipped model for batches of 1 and 64;
* with ``--cpu-paths``: every CPU path side by side (ONNX Runtime fp32 and int8, torch bf16 where
  native, int8 and fp32), each with its ratio to the baseline.  The baseline runs before and after
  them and the mean of its two runs is the reference (the machine is shared: ratios, not absolutes);
* with ``--simulate-avx2``: all of it on a simulated AVX2-only CPU (``bench/avx2_only.c``);
* with ``--paired N``: instead, N rounds of (baseline, each ``--paths`` path), a ratio per round and
  their median: the sturdiest comparison on a machine other jobs share.

Usage::

    PYTHONPATH=. python bench/model_bench.py [--device cpu|cuda|auto] [--n 2048] [--baseline-n N]
        [--model DIR] [--cpu-paths] [--simulate-avx2] [--paired N --paths P,...] [--json FILE]

It takes about 3.5 minutes on 2 CPU cores (the baseline dominates; --baseline-n N shortens it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# An AVX2-only CPU, simulated (before torch or onnxruntime load): bench/avx2.py.  The baseline runs under
# the same simulation.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SIMULATED_AVX2 = "--simulate-avx2" in sys.argv
if SIMULATED_AVX2:
    from bench.avx2 import simulate

    simulate(use_shim="--no-cpuid-shim" not in sys.argv)
AVX2_SHIM = os.environ.get("FINSENT_AVX2_SHIM", "")  # set on the re-executed process: the shim is loaded

import numpy as np
import torch

from model.paths import SHIPPED_CHECKPOINT as SHIPPED


def load_headlines(n: int, data_dir: Path | None) -> tuple[list[str], str]:
    """``n`` headlines: a seeded sample of the Twitter Financial News texts, or generated ones."""
    import pandas as pd

    from model.data import default_data_dir

    d = Path(data_dir) if data_dir else default_data_dir()
    files = [d / "topic" / "topic_train.csv", d / "sentiment" / "tfns_train.csv"]
    texts: list[str] = []
    for f in files:
        if f.is_file():
            texts.extend(pd.read_csv(f, dtype={"text": str}, keep_default_na=False)["text"].tolist())
    if len(texts) >= n:
        rng = np.random.default_rng(7)
        return [texts[i] for i in rng.choice(len(texts), n, replace=False)], f"sample of {', '.join(map(str, files))}"
    rng = np.random.default_rng(7)
    subj = ["Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises"]
    verb = ["shares jump", "shares slump", "beats estimates", "misses estimates", "cuts guidance",
            "raises dividend", "names new CEO", "faces probe", "agrees to buy rival", "prices IPO"]
    tail = ["after strong quarter", "as oil prices fall", "amid Fed rate worries", "on upgrade at Goldman",
            "following weak China data", "", "in heavy trading", "as Treasury yields climb to 2-year high"]
    out = [f"{rng.choice(subj)} {rng.choice(verb)} {rng.choice(tail)} ${rng.integers(1, 500)}".strip()
           for _ in range(n)]
    return out, "generated headlines (../shared/data not found)"


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def throughput(fn, texts: list[str], call_size: int, repeats: int, device: str) -> float:
    """Best-of-``repeats`` items/s of ``fn`` over ``texts`` in calls of ``call_size``."""
    rates = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        for s in range(0, len(texts), call_size):
            fn(texts[s : s + call_size])
        sync(device)
        rates.append(len(texts) / (time.perf_counter() - t0))
    return max(rates)


def latency(fn, texts: list[str], batch: int, calls: int, device: str) -> dict:
    rng = np.random.default_rng(1)
    times = []
    for _ in range(calls):
        start = int(rng.integers(0, len(texts) - batch + 1))
        chunk = texts[start : start + batch]
        sync(device)
        t0 = time.perf_counter()
        fn(chunk)
        sync(device)
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "batch": batch,
        "calls": calls,
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p99_ms": round(float(np.percentile(times, 99)), 2),
        "mean_ms": round(statistics.fmean(times), 2),
    }


def baseline_rate(predict, texts: list[str], device: str) -> float:
    """items/s of one pass of the naive baseline over ``texts`` after one warm-up batch."""
    predict(texts[:32])
    sync(device)
    t0 = time.perf_counter()
    predict(texts)
    sync(device)
    return len(texts) / (time.perf_counter() - t0)


def paired_rounds(args, texts: list[str], device: str) -> list[dict]:
    """``args.paired`` rounds: the naive baseline, then each CPU path of ``args.paths``; ratios per round."""
    from model.checkpoint import load_tokenizer
    from model.engine import load_engine

    base, _ = naive_bert_base(device, load_tokenizer(args.model or SHIPPED))
    bt = texts[: args.baseline_n or 128]
    engines = {p: load_engine(args.model, device, cpu_path=p) for p in args.paths.split(",")}
    for e in engines.values():
        e.predict(texts[:64])
    base(bt[:32])
    rounds, ratios = [], {p: [] for p in engines}
    for r in range(args.paired):
        t0 = time.perf_counter()
        base(bt)
        b = len(bt) / (time.perf_counter() - t0)
        row = {"round": r + 1, "load_average": round(os.getloadavg()[0], 2), "baseline": round(b, 1)}
        for p, e in engines.items():
            t0 = time.perf_counter()
            e.predict(texts)
            rate = len(texts) / (time.perf_counter() - t0)
            row[p] = round(rate, 1)
            ratios[p].append(rate / b)
        rounds.append(row)
        print(f"round {r + 1} (load {row['load_average']}): baseline {b:.1f}/s; "
              + "; ".join(f"{p} {row[p]:.1f}/s = {row[p] / b:.1f}x" for p in engines), flush=True)
    for p, rs in ratios.items():
        print(f"  {p:>9}: ratio to the baseline median {statistics.median(rs):.1f}x (min {min(rs):.1f}x, "
              f"max {max(rs):.1f}x over {len(rs)} rounds)")
    return rounds


def entity_rounds(args, texts: list[str], device: str) -> dict:
    """``args.entities`` paired rounds on the default path: headline-only scoring against scoring with the
    sentiment toward every linked company (the worker's queries, built beforehand), calls of 64 each."""
    from model.classify import entity_requests
    from model.engine import load_engine
    from model.entities import EntityQuery
    from stream.linking import default_linker

    engine = load_engine(args.model, device)
    if not engine.entity_head:
        raise SystemExit(f"{engine.model_version} has no entity head (--model DIR of one)")
    plain = load_engine(args.headline_model, device) if args.headline_model else engine
    linker = default_linker()
    t0 = time.perf_counter()
    queries = [[EntityQuery(r.spans) for r in entity_requests(t, [], linker.link(t), linker)] for t in texts]
    query_us = (time.perf_counter() - t0) / len(texts) * 1e6
    with_ents = sum(1 for q in queries if q)
    print(f"# entities: {with_ents} of {len(texts)} headlines name a linked company "
          f"({sum(len(q) for q in queries)} companies); building the queries (linking included) "
          f"{query_us:.0f} us per headline", flush=True)

    # the other design (issue 22): one pass per (text, company), the mention marked in the input; timed
    # for its cost only (the headline model scores the marked texts: no such model was trained)
    pairs = [f"{t[:a]}[{t[a:b]}]{t[b:]}" for t, q in zip(texts, queries) for e in q for a, b in e.spans[:1]]

    def headline() -> None:
        for s in range(0, len(texts), 64):
            plain.predict(texts[s : s + 64])

    def pairwise() -> None:
        headline()
        for s in range(0, len(pairs), 64):
            plain.predict(pairs[s : s + 64])

    def per_company() -> None:
        for s in range(0, len(texts), 64):
            engine.predict(texts[s : s + 64], entities=queries[s : s + 64])

    headline()
    per_company()
    ratios, pair_ratios = [], []
    for r in range(args.entities):
        t0 = time.perf_counter()
        headline()
        h = time.perf_counter() - t0
        t0 = time.perf_counter()
        per_company()
        c = time.perf_counter() - t0
        t0 = time.perf_counter()
        pairwise()
        pw = time.perf_counter() - t0
        ratios.append(c / h)
        pair_ratios.append(pw / h)
        print(f"round {r + 1} (load {os.getloadavg()[0]:.2f}): headline-only ({plain.model_version}) "
              f"{len(texts) / h:.1f}/s, per-company {len(texts) / c:.1f}/s: time ratio {c / h:.3f}; one pass per "
              f"company ({len(pairs)} more passes): {pw / h:.3f}", flush=True)
    print(f"  per-company / headline-only time: median {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}); one pass per company: median "
          f"{statistics.median(pair_ratios):.3f}; on {engine.describe().get('cpu_path') or device}")
    return {"ratios": ratios, "pairwise_ratios": pair_ratios, "headlines_with_companies": with_ents,
            "query_us_per_headline": round(query_us, 1), "path": engine.describe().get("cpu_path"),
            "model_version": engine.model_version}


def naive_bert_base(device: str, tokenizer):
    """FinBERT-shaped classifier with random weights, as a user would run it: eager, fp32, batch 32."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, num_labels=3, attn_implementation="eager",
    )
    cfg._attn_implementation = "eager"
    model = BertForSequenceClassification(cfg).to(device).eval()

    def predict(texts: list[str]):
        out = []
        with torch.no_grad():
            for s in range(0, len(texts), 32):
                enc = tokenizer(texts[s : s + 32], padding=True, truncation=True, max_length=128,
                                return_tensors="pt").to(device)
                logits = model(**enc).logits
                out.extend(logits.softmax(-1).argmax(-1).tolist())
        return out

    n_params = sum(p.numel() for p in model.parameters())
    return predict, n_params


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="checkpoint dir (default: the shipped one)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--n", type=int, default=2048, help="number of headlines (>= 2000 for the report)")
    ap.add_argument("--data", help="data dir (default ../shared/data)")
    ap.add_argument("--repeats", type=int, default=3, help="throughput runs of the shipped model (best is kept)")
    ap.add_argument("--call-sizes", default="64,all", help="texts per predict() call for the shipped model")
    ap.add_argument("--no-baseline", action="store_true", help="skip the BERT-base baseline")
    ap.add_argument("--baseline-n", type=int, help="headlines for the baseline (default: all --n)")
    ap.add_argument("--cpu-paths", "--compare-dtypes", dest="cpu_paths", action="store_true",
                    help="also time every CPU path (bf16 where native, int8, fp32) in calls of 64 and all at once")
    ap.add_argument("--simulate-avx2", action="store_true",
                    help="an AVX2-only CPU, simulated: CPUID features newer than AVX2 hidden from every library "
                         "(bench/avx2_only.c) and torch/oneDNN/MKL capped at AVX2")
    ap.add_argument("--no-cpuid-shim", action="store_true",
                    help="with --simulate-avx2: only the torch/oneDNN/MKL caps (ONNX Runtime and fbgemm not capped)")
    ap.add_argument("--teacher", metavar="DIR", help="also time this (teacher) checkpoint, e.g. the MPNet one")
    ap.add_argument("--paired", type=int, metavar="ROUNDS",
                    help="instead: ROUNDS paired rounds (the baseline on --baseline-n texts, then each --paths "
                         "path on all texts in one call; a ratio per round: drift on a shared machine hits both)")
    ap.add_argument("--paths", default="onnx-int8,onnx,fp32", help="CPU paths for --paired")
    ap.add_argument("--entities", type=int, metavar="ROUNDS",
                    help="instead: ROUNDS paired rounds of headline-only scoring against scoring with the "
                         "sentiment toward each linked company (the default path, calls of 64; issue 22)")
    ap.add_argument("--headline-model", metavar="DIR",
                    help="with --entities: the headline-only side runs this checkpoint (e.g. the one before the "
                         "entity head; default: --model without entities)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args(argv)

    from model.checkpoint import load_tokenizer
    from model.cpu import BF16_FLAGS, cpu_features
    from model.engine import configure_cpu_threads, load_engine, select_device

    device = select_device(args.device).type
    if SIMULATED_AVX2 and not AVX2_SHIM:
        torch.backends.quantized.engine = "onednn"  # capped by ONEDNN_MAX_CPU_ISA; fbgemm would use VNNI
    if device == "cpu":
        configure_cpu_threads()
    texts, origin = load_headlines(args.n, Path(args.data) if args.data else None)
    results: dict = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": __import__("transformers").__version__,
            "device": device,
            "cpu": platform.processor() or platform.machine(),
            "cpu_threads": torch.get_num_threads(),
            "cpu_flags": sorted(set(cpu_features()) & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
                                                         "amx_bf16", "amx_int8"}),
            "simulated_avx2": SIMULATED_AVX2,
            "cpuid_shim": bool(AVX2_SHIM),  # bench/avx2_only.c loaded: no library sees AVX-512/VNNI/AMX
            "onnxruntime": __import__("onnxruntime").__version__,
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "quantized_engine": torch.backends.quantized.engine,
            "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
            "load_average_start": [round(x, 2) for x in os.getloadavg()],
        },
        "headlines": {"n": len(texts), "source": origin},
    }
    if SIMULATED_AVX2:
        print("# AVX2-only CPU simulated: " + ("CPUID shim loaded (bench/avx2_only.c): ONNX Runtime, fbgemm, oneDNN, "
                                               "ATen, MKL see AVX2 + FMA only" if AVX2_SHIM else
                                               "torch/oneDNN/MKL capped by environment only; ONNX Runtime (MLAS) "
                                               "NOT capped: its figures are this CPU's"))
    print(f"# finsent model benchmark on {device}"
          f"{' (' + results['machine']['gpu'] + ')' if device == 'cuda' else f' ({torch.get_num_threads()} threads)'}"
          f"; {len(texts)} headlines: {origin}")

    if args.entities:
        results["entities"] = entity_rounds(args, texts, device)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        return 0
    if args.paired:
        results["paired"] = paired_rounds(args, texts, device)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        return 0

    baseline = None
    if not args.no_baseline:  # measured before and after the finsent paths: the mean is the reference
        baseline = naive_bert_base(device, load_tokenizer(args.model or SHIPPED))
        bt = texts[: args.baseline_n] if args.baseline_n else texts
        first = baseline_rate(baseline[0], bt, device)
        print(f"  baseline BERT-base eager fp32 batch 32 ({baseline[1] / 1e6:.0f}M params), first run: {first:9.1f} items/s")

    t0 = time.perf_counter()
    engine = load_engine(args.model, device)
    load_s = time.perf_counter() - t0
    desc = engine.describe()
    lens = [len(x) for x in engine.tokenize(texts)]
    results["headlines"]["tokens_mean"] = round(float(np.mean(lens)), 1)
    results["headlines"]["tokens_p99"] = int(np.percentile(lens, 99))
    print(f"shipped model {engine.model_version}: {desc['cpu_path'] or desc['dtype']}"
          f"{' (' + desc['cpu_path_reason'] + ')' if desc['cpu_path_reason'] else ''}, micro-batch {desc['batch_size']}, "
          f"load+warm-up {load_s:.1f}s; tokens/headline mean {results['headlines']['tokens_mean']}")

    shipped = {}
    for cs in args.call_sizes.split(","):
        size = len(texts) if cs == "all" else int(cs)
        rate = throughput(engine.predict, texts, size, args.repeats, device)
        shipped[f"call_{cs}"] = round(rate, 1)
        print(f"  shipped, calls of {cs:>4}: {rate:9.1f} items/s")
    best = max(shipped.values())
    results["shipped"] = {"engine": desc, "load_s": round(load_s, 2), "items_per_s": shipped, "best": best}
    lat = [latency(engine.predict, texts, 1, 200 if device == "cpu" else 500, device),
           latency(engine.predict, texts, 64, 40 if device == "cpu" else 200, device)]
    results["shipped"]["latency"] = lat
    for row in lat:
        print(f"  shipped latency batch {row['batch']:>3}: p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms")

    if args.cpu_paths and device == "cpu":
        alt = {}
        native_bf16 = bool(set(cpu_features()) & set(BF16_FLAGS))
        for path in ("onnx", "onnx-int8", "bf16", "int8", "fp32"):
            if path == "bf16" and not native_bf16:
                continue  # emulated bf16 is slower than fp32: never chosen on such CPUs
            e = load_engine(args.model, device, cpu_path=path)
            row = {}
            for cs in args.call_sizes.split(","):
                size = len(texts) if cs == "all" else int(cs)
                row[f"call_{cs}"] = round(throughput(e.predict, texts, size, args.repeats, device), 1)
            alt[path] = row
            print(f"  CPU path {path:>9}: " + ", ".join(f"calls of {k[5:]} {v:.1f}/s" for k, v in row.items()))
            del e
        results["cpu_paths"] = alt
        best = max(best, *(v for row in alt.values() for v in row.values()))
        results["shipped"]["best"] = best

    if args.teacher:
        e = load_engine(args.teacher, device)
        row = {}
        for cs in args.call_sizes.split(","):
            size = len(texts) if cs == "all" else int(cs)
            row[f"call_{cs}"] = round(throughput(e.predict, texts, size, 1 if device == "cpu" else args.repeats,
                                                 device), 1)
        results["teacher"] = {"engine": e.describe(), "items_per_s": row}
        print(f"  teacher {e.model_version} ({e.describe()['cpu_path'] or e.describe()['dtype']}): "
              + ", ".join(f"calls of {k[5:]} {v:.1f}/s" for k, v in row.items()))
        del e

    if baseline is not None:
        second = baseline_rate(baseline[0], bt, device)
        rate = (first + second) / 2
        results["baseline"] = {
            "what": "BertForSequenceClassification 12 layers x 768 (FinBERT shape), random weights, "
                    "eager attention, fp32, batch 32, input order, padding=True",
            "parameters": baseline[1],
            "n": len(bt),
            "items_per_s_runs": [round(first, 1), round(second, 1)],
            "items_per_s": round(rate, 1),
        }
        results["ratio"] = round(best / rate, 1)
        print(f"  baseline BERT-base eager fp32 batch 32, second run: {second:9.1f} items/s (mean {rate:.1f})")
        print("ratios to the baseline (mean of its two runs):")
        print(f"  shipped ({desc['cpu_path'] or desc['dtype']}), best call size: {max(shipped.values()) / rate:6.1f}x")
        for path, row in results.get("cpu_paths", {}).items():
            print(f"  CPU path {path:>9}, best call size: {max(row.values()) / rate:6.1f}x")
            row["ratio"] = round(max(row.values()) / rate, 1)
        if "teacher" in results:
            print(f"  teacher: {max(results['teacher']['items_per_s'].values()) / rate:6.1f}x")
        print(f"ratio shipped best / baseline: {results['ratio']:.1f}x")

    results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"load average (1, 5, 15 min) at start {results['machine']['load_average_start']}, "
          f"at end {results['machine']['load_average_end']} (other processes on this machine skew the figures)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
