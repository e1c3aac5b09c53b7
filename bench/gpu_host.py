#!/usr/bin/env python
"""GPU host layout: what one and N worker processes feed a GPU, in one command.

On a CUDA machine (after ``make setup``)::

    .venv/bin/python bench/gpu_host.py            # starts the local stack if it is not running

prints, on the StockNet tweets:

1. model only: ``engine.predict`` at each batch bucket (``--buckets``), items/s;
2. input transfer: a (bucket x seq) int64 batch host -> GPU from pageable vs pinned memory;
3. eager vs ``torch.compile`` (``mode="reduce-overhead"``: CUDA graphs) at fixed batch buckets,
   inputs padded to ``--seq`` tokens;
4. the whole pipeline on this host (broker, PostgreSQL, workers): a pre-loaded topic with
   ``--partitions`` partitions drained by 1, 2, 4 ... worker processes (``--workers``), each with the
   model resident, ``max_batch`` = ``--max-batch``; items/s, exact counts, and the ratio to the best
   model-only figure; then the recommended layout (the fewest workers within 5% of the best).

``--cpu-check`` runs the same logic on the CPU with tiny sizes (so it is known to work where no GPU
is: ``tests/integration/test_bench_scripts.py`` runs it); its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from bench.pipeline import load_messages, mode_drain
from deploy import localstack
from model.cpu import describe_cpu
from model.engine import load_engine, select_device
from stream.base.config import load_settings
from stream.messages.raw_message import model_text


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats: int) -> float:
    """Best seconds of ``repeats`` calls (after one warm-up call)."""
    fn()
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def model_only(engine, device, texts: list[str], buckets: list[int], repeats: int) -> dict[int, float]:
    out = {}
    for b in buckets:
        chunk = (texts * (b // max(1, len(texts)) + 1))[:b]
        secs = timed(lambda: engine.predict(chunk), device, repeats)
        out[b] = b / secs
        print(f"  model only, batch {b}: {out[b]:,.0f} items/s")
    return out


def transfer(device, buckets: list[int], seq: int, repeats: int) -> dict[int, dict]:
    out = {}
    if device.type != "cuda":
        print("  input transfer: skipped (no CUDA device; pinned memory needs one)")
        return out
    for b in buckets:
        x = torch.randint(0, 30000, (b, seq), dtype=torch.int64)
        xp = x.pin_memory()
        pageable = timed(lambda: x.to(device), device, repeats)
        pinned = timed(lambda: xp.to(device, non_blocking=True), device, repeats)
        mb = x.numel() * 8 / 1e6
        out[b] = {"pageable_us": pageable * 1e6, "pinned_us": pinned * 1e6, "mb": mb}
        print(f"  transfer {b}x{seq} int64 ({mb:.2f} MB): pageable {pageable * 1e6:.0f} us, pinned "
              f"{pinned * 1e6:.0f} us ({mb / 1e3 / max(pinned, 1e-9):.1f} GB/s)")
    return out


def compiled(engine, buckets: list[int], seq: int, repeats: int, mode: str | None) -> dict[int, dict]:
    """Forward pass only, fixed shapes: eager vs torch.compile (reduce-overhead = CUDA graphs on a GPU)."""
    device = engine._device
    model = engine.model
    mode = mode or ("reduce-overhead" if device.type == "cuda" else "default")
    out = {}
    try:
        fast = torch.compile(model, mode=mode, dynamic=False)
    except Exception as exc:  # noqa: BLE001 - report, do not fail the layout run
        print(f"  torch.compile unavailable: {exc}")
        return out
    for b in buckets:
        ids = torch.randint(1000, 20000, (b, seq), dtype=torch.int64, device=device)
        mask = torch.ones_like(ids, dtype=torch.bool)

        @torch.inference_mode()
        def eager():
            return model(ids, mask)

        @torch.inference_mode()
        def comp():
            return fast(ids, mask)

        e = timed(eager, device, repeats)
        try:
            t0 = time.perf_counter()
            comp()
            comp()
            sync(device)
            warm = time.perf_counter() - t0
            c = timed(comp, device, repeats)
        except Exception as exc:  # noqa: BLE001 - report, do not fail the layout run
            print(f"  batch {b}: torch.compile({mode}) failed: {str(exc).splitlines()[0][:200]}")
            continue
        out[b] = {"eager": b / e, "compiled": b / c, "compile_s": warm}
        print(f"  forward {b}x{seq}: eager {b / e:,.0f} items/s, compiled ({mode}) {b / c:,.0f} items/s "
              f"(x{e / c:.2f}; first calls {warm:.1f}s)")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto | cuda | cpu")
    ap.add_argument("--items", type=int, default=200_000, help="tweets in the pre-loaded topic")
    ap.add_argument("--workers", type=ints, default=[1, 2, 4, 8], help="worker process counts, e.g. 1,2,4,8")
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--max-batch", type=int, default=256)
    ap.add_argument("--max-wait", type=float, default=0.05)
    ap.add_argument("--buckets", type=ints, default=[64, 256, 1024, 4096])
    ap.add_argument("--seq", type=int, default=64, help="tokens per row for the transfer and compile tests")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--compile-mode", default=None, help="torch.compile mode (default reduce-overhead on CUDA)")
    ap.add_argument("--cpu-check", action="store_true", help="tiny sizes on the CPU: checks the script, not the GPU "
                                                            "(torch.compile only with --compile: minutes on a CPU)")
    ap.add_argument("--compile", action="store_true", help="with --cpu-check: also try torch.compile")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if args.cpu_check:
        args.device, args.items, args.workers, args.partitions = "cpu", 400, [1, 2], 4
        args.max_batch, args.buckets, args.seq, args.repeats = 32, [8, 32], 16, 2
        args.no_compile = args.no_compile or not args.compile

    device = select_device(args.device)
    base = load_settings().replace(device=device.type)
    st = localstack.status(base)
    if not (st["kafka_ok"] and st["postgres_ok"]):
        print("starting the local stack ...")
        localstack.up(base, quiet=True)
    msgs, what = load_messages(args.items)
    texts = [model_text(m["title"]) for m in msgs[:8192]]
    res: dict = {"device": device.type, "cpu": describe_cpu(), "input": what, "items": len(msgs)}
    if device.type == "cuda":
        res["gpu"] = torch.cuda.get_device_name(device)
    print(f"device {device} {res.get('gpu', '')}; CPU: {res['cpu']}; input: {len(msgs)} {what}")

    print("1. model only")
    engine = load_engine(base.model, device=device.type, batch_size=max(args.buckets))
    res["model_only"] = model_only(engine, device, texts, args.buckets, args.repeats)
    best_model = max(res["model_only"].values())
    print("2. input transfer")
    res["transfer"] = transfer(device, args.buckets, args.seq, args.repeats)
    print("3. eager vs torch.compile at fixed buckets")
    res["compile"] = {} if args.no_compile else compiled(engine, args.buckets, args.seq, args.repeats,
                                                         args.compile_mode)
    del engine
    if device.type == "cuda":
        torch.cuda.empty_cache()

    print(f"4. pipeline on this host: {args.partitions} partitions, max_batch {args.max_batch}, "
          f"max_wait {args.max_wait}s")
    opts = SimpleNamespace(max_batch=args.max_batch, max_wait=args.max_wait, profile=None, keep=args.keep)
    runs = {}
    for n in args.workers:
        r = mode_drain(base, msgs, "model", opts, f"{n} worker(s)", workers=n, partitions=args.partitions)
        r["ratio"] = r["rate"] / best_model
        runs[n] = r
        print(f"  {n} worker(s): {r['rate']:,.0f} items/s = {r['ratio']:.2f}x the best model-only figure "
              f"({best_model:,.0f}); counts {'exact' if r['exact'] else 'WRONG'}")
    res["workers"] = runs
    best = max(r["rate"] for r in runs.values())
    pick = min(n for n, r in runs.items() if r["rate"] >= 0.95 * best)
    res["recommended"] = {"workers": pick, "partitions": args.partitions, "max_batch": args.max_batch,
                          "max_wait_s": args.max_wait}
    print(f"recommended layout: {pick} worker process(es) per GPU, >= {args.partitions} partitions, "
          f"max_batch {args.max_batch}, max_wait {args.max_wait}s ({runs[pick]['rate']:,.0f} items/s, "
          f"{runs[pick]['ratio']:.2f}x model-only)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))
    return 0 if all(r["exact"] for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
