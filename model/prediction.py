"""What every inference engine shares, without torch: the :class:`Prediction` record, input checks,
length-sorted micro-batches with dynamic padding, and probabilities -> predictions.

Used by the torch engine (:mod:`model.torch_engine`) and the ONNX Runtime engine (:mod:`model.ort`),
so both batch, pad and label the same way.  numpy only: importing it costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from model.entities import EntityQuery, entity_masks
from model.tokens import token_ids_offsets
from stream.base.labels import SENTIMENTS, TOPICS

__all__ = ["EntitySentiment", "Prediction", "check_texts", "empty_proba", "length_batches", "pad_batch",
           "run_batches", "softmax", "to_predictions"]


@dataclass(frozen=True, slots=True)
class EntitySentiment:
    """The sentiment toward one entity of a text: the entity head's (``source`` "entity"), or the text's own
    where the entity is absent from the text or the checkpoint has no entity head (``source`` "headline")."""

    sentiment: str
    p_negative: float
    p_neutral: float
    p_positive: float
    sentiment_score: float  # p_positive - p_negative
    source: str  # entity | headline

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_proba(cls, p: np.ndarray, source: str) -> EntitySentiment:
        neg, neu, pos = (float(x) for x in p)
        return cls(SENTIMENTS[int(np.argmax(p))], neg, neu, pos, pos - neg, source)


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
    entities: tuple[EntitySentiment, ...] = ()  # one per entity asked for (predict(texts, entities=...))

    def to_dict(self) -> dict:
        d = asdict(self)
        if not self.entities:
            del d["entities"]
        return d


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


class BatchedEngine:
    """What both engines share above their forward pass (:class:`model.ort.OrtEngine`,
    :class:`model.torch_engine.Engine`): tokenizing, micro-batching (:func:`run_batches`), probabilities,
    predictions and the sentiment toward entities.  A subclass sets ``micro_batch``, ``pad_id``,
    ``entity_head``, ``exact_lengths``, ``offsets_tokenizer`` (a ``tokenizers.Tokenizer``) and ``_lock``,
    and implements ``tokenize`` and ``_forward(ids, entity_mask)`` -> logits as numpy float32."""

    micro_batch: int
    pad_id: int
    entity_head: bool = False
    exact_lengths: bool = False
    offsets_tokenizer = None
    last_tokenize_s: float = 0.0

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        raise NotImplementedError

    def _forward(self, ids: np.ndarray, entity_mask: np.ndarray | None) -> Sequence[np.ndarray]:
        raise NotImplementedError

    def _run(self, ids, queries=None, offsets=None) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        return run_batches(ids, self.micro_batch, self.pad_id, self._forward, exact=self.exact_lengths,
                           entity_head=self.entity_head, queries=queries, offsets=offsets)

    def predict_logits(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Raw topic (N x 20) and sentiment (N x 3) logits, float32, input order (distillation)."""
        return tokenize_and_run(self, texts, lambda ids: self._run(ids)[:2])

    def predict_proba(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Topic (N x 20) and sentiment (N x 3) probabilities, float32, input order."""
        topic, sent = self.predict_logits(texts)
        return softmax(topic), softmax(sent)

    def predict(self, texts: Sequence[str],
                entities: Sequence[Sequence[EntityQuery]] | None = None) -> list[Prediction]:
        """Classify ``texts``; one :class:`Prediction` per text, in input order.  ``entities``: per text, the
        entities to score the sentiment toward (:class:`model.entities.EntityQuery`: their mentions'
        spans in the text), in the same encoder pass; each prediction's ``entities`` answers them in order."""
        if entities is None:
            topic_p, sent_p = self.predict_proba(texts)
            return to_predictions(topic_p, sent_p) if len(topic_p) else []
        texts = check_texts(texts)
        if len(entities) != len(texts):
            raise ValueError(f"{len(entities)} entity lists for {len(texts)} texts")
        if not texts:
            return []
        with self._lock:
            t0 = time.perf_counter()
            if self.entity_head and any(entities):
                ids, offsets = token_ids_offsets(self.offsets_tokenizer, texts)
            else:
                ids, offsets = self.tokenize(texts), None
            self.last_tokenize_s = time.perf_counter() - t0
            topic, sent, ents = self._run(ids, entities, offsets)
        topic_p, sent_p = softmax(topic), softmax(sent)
        return to_predictions(topic_p, sent_p, entity_sentiments(sent_p, ents, entities, self.entity_head))


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


Run = Callable[[np.ndarray, "np.ndarray | None"], Sequence[np.ndarray]]


def run_batches(ids: Sequence[Sequence[int]], batch_size: int, pad_id: int, run: Run, *, exact: bool = False,
                entity_head: bool = False, queries: Sequence[Sequence[EntityQuery]] | None = None,
                offsets: Sequence[Sequence[tuple[int, int]]] | None = None
                ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The micro-batch loop of both engines: length-sorted batches (:func:`length_batches`), padded, each
    given to ``run(ids, entity_mask)`` -> (topic logits, sentiment logits[, entity logits]); results back
    in input order: (topic N x 20, sentiment N x 3, per text an entities x 3 array of entity logits).

    ``entity_head``: the model takes ``entity_mask`` (batch x entities x tokens; all zero where a call
    asks for no entity).  ``queries`` / ``offsets``: the entities of each text and the tokens' character
    offsets (:func:`model.tokens.token_ids_offsets`)."""
    n = len(ids)
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=n)
    topic = sent = np.empty((n, 0), np.float32)
    ents: list[np.ndarray] = [np.empty((0, len(SENTIMENTS)), np.float32)] * n
    for idx in length_batches(lengths, batch_size, exact=exact):
        batch = pad_batch(ids, idx, lengths, pad_id)
        mask = None
        if entity_head:
            mask = (entity_masks(offsets, queries, batch.shape[1], idx) if queries is not None and offsets is not None
                    else np.zeros((len(idx), 1, batch.shape[1]), np.float32))
        out = run(batch, mask)
        if topic.shape[1] == 0:
            topic = np.empty((n, out[0].shape[1]), np.float32)
            sent = np.empty((n, out[1].shape[1]), np.float32)
        topic[idx] = out[0]
        sent[idx] = out[1]
        if queries is not None and len(out) > 2:
            for r, j in enumerate(idx):
                ents[j] = np.asarray(out[2][r, : len(queries[j])], np.float32)
    return topic, sent, ents


def entity_sentiments(sent_p: np.ndarray, ent_logits: list[np.ndarray], queries: Sequence[Sequence[EntityQuery]],
                      entity_head: bool) -> list[tuple[EntitySentiment, ...]]:
    """Per text, one :class:`EntitySentiment` per query: the entity head's where the entity has a mention
    in the text and the model has the head, else the text's own sentiment."""
    out = []
    for i, qs in enumerate(queries):
        row = []
        for e, q in enumerate(qs):
            if entity_head and q.spans and len(ent_logits[i]) > e:
                row.append(EntitySentiment.from_proba(softmax(ent_logits[i][e]), "entity"))
            else:
                row.append(EntitySentiment.from_proba(sent_p[i], "headline"))
        out.append(tuple(row))
    return out


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32, copy=False)


def to_predictions(topic_p: np.ndarray, sent_p: np.ndarray,
                   entities: Sequence[tuple[EntitySentiment, ...]] | None = None) -> list[Prediction]:
    """One :class:`Prediction` per row of topic (N x 20) and sentiment (N x 3) probabilities (and the
    texts' entity sentiments, when asked for)."""
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
                entities=entities[i] if entities is not None else (),
            )
        )
    return out
