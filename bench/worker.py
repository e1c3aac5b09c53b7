#!/usr/bin/env python
"""``finsent worker`` for benchmarks: the same worker, optionally with the zero-cost null model.

Environment (besides the usual FINSENT_* settings):

* ``FINSENT_BENCH_ENGINE``: ``model`` (default, the checkpoint, as ``finsent worker``),
  ``null`` (fixed predictions, the checkpoint's tokenizer still runs) or ``null-notok``
  (fixed predictions, no tokenisation).

Alerts are off (as ``finsent worker --no-alerts``): the benchmark measures scoring and storing.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> int:
    from stream.app import run_worker
    from stream.base.config import load_settings
    from stream.core.kafka_io import ensure_topics
    from stream.wiring import build_parts

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    ensure_topics(settings)
    kind = os.environ.get("FINSENT_BENCH_ENGINE", "model")
    engine = None
    if kind in ("null", "null-notok"):
        from model.null import load_null_engine

        engine = load_null_engine(settings.model, tokenize=kind == "null")
    elif kind != "model":
        sys.exit(f"FINSENT_BENCH_ENGINE must be model, null or null-notok, not {kind!r}")
    parts = build_parts(settings, alerts=False, engine=engine)
    parts.metrics.serve(settings.metrics_port, settings.metrics_bind)
    return run_worker(settings, parts)


if __name__ == "__main__":
    sys.exit(main())
