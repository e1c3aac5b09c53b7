"""The StockNet tweets as news.raw messages, for the benchmarks (no finsent import: any checkout's code can
run beside it)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

STOCKNET = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "streams" / "stocknet_tweets.jsonl.gz"


def messages(n: int, path: Path = STOCKNET) -> list[dict]:
    """The first ``n`` tweets (fewer if the file has fewer), each with an explicit id (exact counts) and its
    ticker."""
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= n:
                break
            t = json.loads(line)
            out.append({"id": f"sn{i}", "published_at": t["published_at"], "title": t["text"],
                        "tickers": [t["ticker"]], "source": "stocknet"})
    return out


def write_archive(n: int, folder: Path) -> tuple[Path, list[dict]]:
    """:func:`messages` as a JSON lines archive in ``folder``."""
    msgs = messages(n)
    path = folder / f"stocknet-{len(msgs)}.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for m in msgs:
            f.write(json.dumps(m, ensure_ascii=False) + "\n")
    return path, msgs
