"""What every inference engine shares, without torch: the :class:`Prediction` record, input checks,
length-sorted micro-batches with dynamic padding, and probabilities -> predictions.

Used by the torch engine (:mod:`model.torch_engine`) and the ONNX Runtime engine (:mod:`model.ort`),
so both batch, pad and label the same way.  numpy only: importing it costs nothing.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Iterator, Sequence

import numpy as np

from stream.base.labels import SENTIMENTS, TOPICS

__all__ = ["Prediction", "check_texts", "empty_proba", "length_batches", "pad_batch", "softmax", "to_predictions"]


@dataclass(frozen=True, slots=True)
class Prediction:
    """The model's reading of one text."""

    topic: str
    topic_id: int  # 0-19, ids of the Twitter Financial News topic set
    topic_score: float  # probability of ``topic``
    sentiment: str  # negative | neutral | positive
    p_negative: float
    p_neutral: float
    p_positive: float
    sentiment_score: float  # p_positive - p_negative, in [-1, 1]

    def to_dict(self) -> dict:
        return asdict(self)


def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list; one string or a non-string item is a ``TypeError``."""
    if isinstance(texts, str):
        raise TypeError("predict() takes a sequence of texts, not one string")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"text {i} is {type(t).__name__}, not str")
    return texts


def tokenize_and_run(engine, texts: Sequence[str], run) -> tuple[np.ndarray, np.ndarray]:
    """The one predict step of both engines: check ``texts``, then under the engine's lock tokenize them
    (the time kept in ``engine.last_tokenize_s`` for the worker's per-stage breakdown) and ``run(ids)``."""
    texts = check_texts(texts)
    if not texts:
        return empty_proba()
    with engine._lock:
        t0 = time.perf_counter()
        ids = engine.tokenize(texts)
        engine.last_tokenize_s = time.perf_counter() - t0
        return run(ids)


def empty_proba() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, len(TOPICS)), np.float32), np.zeros((0, len(SENTIMENTS)), np.float32)


def length_batches(lengths: np.ndarray, batch_size: int, exact: bool = False) -> Iterator[np.ndarray]:
    """Indices of micro-batches of texts of similar length (sorted by length, stable).

    ``exact``: a micro-batch holds texts of one length only, so nothing is padded.  The torch paths need it
    for batch invariance: padding changes the shapes of the attention and pooling kernels, whose sums then
    round differently (bf16: scores moved by up to 0.005 between a text alone and in a batch of 16; with
    equal lengths, bit-identical).  The ONNX int8 path does not: its per-row scales make it invariant."""
    order = np.argsort(lengths, kind="stable")
    if not exact:
        for start in range(0, len(order), batch_size):
            yield order[start : start + batch_size]
        return
    sorted_lengths = lengths[order]
    bounds = np.flatnonzero(np.diff(sorted_lengths)) + 1  # where the length changes
    for group in np.split(order, bounds):
        for start in range(0, len(group), batch_size):
            yield group[start : start + batch_size]


def pad_batch(ids: Sequence[Sequence[int]], idx: np.ndarray, lengths: np.ndarray, pad_id: int) -> np.ndarray:
    """The rows ``idx`` of ``ids`` as an int64 matrix padded (right) to their own longest."""
    arr = np.full((len(idx), int(lengths[idx].max())), pad_id, dtype=np.int64)
    for row, j in enumerate(idx):
        arr[row, : lengths[j]] = ids[j]
    return arr


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32, copy=False)


def to_predictions(topic_p: np.ndarray, sent_p: np.ndarray) -> list[Prediction]:
    """One :class:`Prediction` per row of topic (N x 20) and sentiment (N x 3) probabilities."""
    topic_ids = topic_p.argmax(1)
    sent_ids = sent_p.argmax(1)
    topic_scores = topic_p[np.arange(len(topic_ids)), topic_ids]
    out = []
    for i in range(len(topic_ids)):
        t = int(topic_ids[i])
        neg, neu, pos = (float(x) for x in sent_p[i])
        out.append(
            Prediction(
                topic=TOPICS[t],
                topic_id=t,
                topic_score=float(topic_scores[i]),
                sentiment=SENTIMENTS[int(sent_ids[i])],
                p_negative=neg,
                p_neutral=neu,
                p_positive=pos,
                sentiment_score=pos - neg,
            )
        )
    return out
