"""Stand-ins for the batch step's collaborators, shared by the unit and integration tests.

* :class:`FakePrediction` -- the shape of ``model.prediction.Prediction`` (a negative Earnings
  reading by default);
* :class:`FakeEngine` -- the same prediction for every text, every call's texts recorded;
* :class:`HashEngine` -- labels from a hash of each text (deterministic, varied: rescoring tests);
* :class:`FakeWriter` / :class:`Written` -- ``storage.writer.Writer.write_batch`` in memory, ids de-duplicated;
* :class:`FakeAlerts` -- ``alerts.service.AlertService.observe``: one alert on the first call;
* :func:`msg` -- the bytes of a valid news.raw message.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from stream.base.labels import TOPICS


@dataclass(frozen=True)
class FakePrediction:
    topic: str = "Earnings"
    topic_id: int = 5
    topic_score: float = 0.9
    sentiment: str = "negative"
    p_negative: float = 0.8
    p_neutral: float = 0.15
    p_positive: float = 0.05
    sentiment_score: float = -0.75


class FakeEngine:
    """The default :class:`FakePrediction` for every text; ``calls``: the texts of each predict()."""

    model_version = "fake-1"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def predict(self, texts):
        self.calls.append(list(texts))
        return [FakePrediction() for _ in texts]


class HashEngine:
    """Deterministic stand-in for model.engine.Engine: labels from a hash of the text."""

    def __init__(self, version: str = "fake-2") -> None:
        self.model_version = version
        self.calls = 0
        self.texts = 0

    def predict(self, texts):
        self.calls += 1
        self.texts += len(texts)
        out = []
        for t in texts:
            h = hashlib.sha256(t.encode()).digest()
            sent = ("negative", "neutral", "positive")[h[0] % 3]
            probs = {"negative": (0.8, 0.1, 0.1), "neutral": (0.1, 0.8, 0.1), "positive": (0.05, 0.15, 0.8)}[sent]
            tid = h[1] % len(TOPICS)
            out.append(FakePrediction(TOPICS[tid], tid, 0.7, sent, *probs, probs[2] - probs[0]))
        return out


@dataclass
class Written:
    inserted: list[Any]
    skipped: int


class FakeWriter:
    def __init__(self) -> None:
        self.ids: set[str] = set()

    def write_batch(self, rows):
        new = [r for r in rows if r.id not in self.ids]
        self.ids.update(r.id for r in new)
        return Written(new, len(rows) - len(new))


class FakeAlerts:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, bool, bool]] = []

    def observe(self, t, replay, notify):
        self.calls.append((t, replay, notify))
        return ["alert"] if len(self.calls) == 1 else []


def msg(i: int, **kw: Any) -> bytes:
    """A valid news.raw message ``a{i}`` about $ACME at 10:{i} on 2024-05-01; ``kw`` overrides its fields."""
    m = {"id": f"a{i}", "published_at": f"2024-05-01T10:{i:02d}:00Z", "title": f"$ACME item {i}"}
    m.update(kw)
    return json.dumps(m).encode()
