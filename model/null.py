"""A zero-cost stand-in for :class:`model.engine.Engine`, to measure the pipeline's own ceiling.

``NullEngine.predict(texts)`` returns fixed predictions (a short cycle over a few
topic/sentiment pairs, so the trend buckets see several scopes as with a real
model) without running any network.  With ``tokenize=True`` it still runs the
checkpoint's real tokenizer over the batch, so the measured ceiling includes
that per-item cost, which a GPU host pays on the CPU too.

Used by ``bench/pipeline.py --null-model`` (through ``bench/worker.py``); never
by the production worker.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from model.engine import Prediction
from model.paths import read_config_json, resolve_checkpoint
from model.tokens import load_tokenizer_file, token_ids
from stream.base.labels import SENTIMENTS, TOPICS

NULL_MODEL_VERSION = "null-model"

# (topic id, sentiment id, p_negative, p_neutral, p_positive)
_CYCLE = ((19, 0, 0.8, 0.15, 0.05), (5, 2, 0.1, 0.2, 0.7), (15, 1, 0.2, 0.6, 0.2),
          (2, 1, 0.1, 0.8, 0.1), (13, 2, 0.05, 0.25, 0.7), (1, 0, 0.6, 0.3, 0.1), (18, 1, 0.3, 0.4, 0.3))


def fixed_predictions() -> tuple[Prediction, ...]:
    return tuple(
        Prediction(topic=TOPICS[t], topic_id=t, topic_score=0.9, sentiment=SENTIMENTS[s],
                   p_negative=neg, p_neutral=neu, p_positive=pos, sentiment_score=pos - neg)
        for t, s, neg, neu, pos in _CYCLE
    )


class NullEngine:
    """Engine protocol (``predict``, ``model_version``) at zero model cost."""

    device = "cpu"

    def __init__(self, tokenizer=None, *, max_length: int = 128) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.model_version = NULL_MODEL_VERSION + ("+tokenize" if tokenizer is not None else "")
        self._preds = fixed_predictions()
        self.last_tokenize_s = 0.0

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return token_ids(self.tokenizer, texts)  # what the ONNX Runtime engine (the CPU default) runs

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        if isinstance(texts, str):
            raise TypeError("predict() takes a sequence of texts, not one string")
        if self.tokenizer is not None and len(texts):
            t0 = time.perf_counter()
            self.tokenize(list(texts))
            self.last_tokenize_s = time.perf_counter() - t0
        else:
            self.last_tokenize_s = 0.0
        p, k = self._preds, len(self._preds)
        return [p[i % k] for i in range(len(texts))]

    def describe(self) -> dict:
        return {"model_version": self.model_version, "device": "none", "tokenize": self.tokenizer is not None}


def load_null_engine(path: str | os.PathLike | None = None, *, tokenize: bool = True) -> NullEngine:
    """A null engine; with ``tokenize`` it loads the checkpoint's tokenizer (not its weights), the same
    ``tokenizers`` path as the ONNX Runtime engine (:mod:`model.tokens`)."""
    if not tokenize:
        return NullEngine()
    directory = resolve_checkpoint(path)
    max_length = int(read_config_json(directory).get("max_length", 128))
    return NullEngine(load_tokenizer_file(directory, max_length), max_length=max_length)
