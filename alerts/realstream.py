"""A real news archive through the worker's own parsing, scored once by the shipped model.

Used by ``python -m alerts.quality --real PATH``: every row goes through the
replay's column mapping and :func:`stream.schema.parse_message` (the same id,
ticker and text rules as ``finsent replay`` + the worker), duplicate ids are
dropped as the worker drops them, and each distinct model text is scored once
by :func:`model.engine.load_engine` in batches.  The scores are cached under
``cache_dir`` (default ``/tmp/finsent-quality``) keyed by the archive's path,
size and mtime and the model version, so tuning runs take seconds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.replay import ColumnMap, ReplayStats, prepare, read_rows
from stream.schema import NewsItem

log = logging.getLogger("finsent.quality")

DEFAULT_CACHE = Path(os.environ.get("FINSENT_QUALITY_CACHE", "/tmp/finsent-quality"))
SENTIMENTS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class ScoredItem:
    item: NewsItem
    sentiment: str
    p_negative: float
    sentiment_score: float
    topic: str


def load_items(path: Path) -> tuple[list[NewsItem], ReplayStats]:
    """Valid items of the archive in event-time order, first occurrence of each id only."""
    stats = ReplayStats()
    seen: set[str] = set()
    items: list[NewsItem] = []
    for p in prepare(read_rows(Path(path)), ColumnMap(), None, stats):
        if p.item is None or p.item.id in seen:
            continue
        seen.add(p.item.id)
        items.append(p.item)
    items.sort(key=lambda it: (it.published_at, it.id))
    return items, stats


def _cache_file(path: Path, model_version: str, cache_dir: Path) -> Path:
    st = Path(path).stat()
    key = hashlib.sha256(f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}|{model_version}".encode()).hexdigest()[:16]
    return cache_dir / f"scores-{key}.npz"


def score_items(items: list[NewsItem], path: Path, cache_dir: Path = DEFAULT_CACHE, batch: int = 4096,
                model: str | None = None) -> list[ScoredItem]:
    """Model scores for ``items``: each distinct text scored once, cached per archive and model version."""
    from model.engine import load_engine
    from model.labels import TOPICS

    texts = sorted({it.model_text for it in items})
    cache = _cache_file(path, _model_version(model), cache_dir)
    sent = topic = None
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        if list(z["texts"]) == texts:
            sent, topic = z["sent"], z["topic"]
        else:
            log.warning("score cache %s does not match the archive; rescoring", cache)
    if sent is None:
        engine = load_engine(model, "auto")
        sent = np.zeros((len(texts), 3), np.float32)
        topic = np.zeros(len(texts), np.int16)
        t0 = time.perf_counter()
        for i in range(0, len(texts), batch):
            tp, sp = engine.predict_proba(texts[i : i + batch])
            sent[i : i + batch] = sp
            topic[i : i + batch] = tp.argmax(1)
            done = min(i + batch, len(texts))
            log.info("scored %d/%d texts (%.0f/s)", done, len(texts), done / (time.perf_counter() - t0))
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.stem + ".tmp.npz")
        np.savez(tmp, texts=np.array(texts), sent=sent, topic=topic)
        os.replace(tmp, cache)
    index = {t: i for i, t in enumerate(texts)}
    out = []
    for it in items:
        j = index[it.model_text]
        p = sent[j]
        out.append(ScoredItem(it, SENTIMENTS[int(p.argmax())], float(p[0]), float(p[2] - p[0]), TOPICS[int(topic[j])]))
    return out


def _model_version(model: str | None) -> str:
    from model.checkpoint import read_config

    return read_config(model).model_version
