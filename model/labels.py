"""Label sets of the finsent model and the label maps of its training data.

The topic ids are those of the Twitter Financial News topic data set (see
``../shared/data/README.md``); the sentiment order is the model's own
(negative, neutral, positive).  Data sets spell their labels differently: the
Twitter Financial News sentiment set uses ids 0 Bearish, 1 Bullish, 2 Neutral,
the Financial PhraseBank uses names.  :func:`resolve_label_map` turns a
``--label-map`` option into a mapping from raw labels to model label names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from stream.base.errors import UserError
from stream.base.labels import SENTIMENTS, TOPICS

TOPIC_TO_ID = {name: i for i, name in enumerate(TOPICS)}
SENTIMENT_TO_ID = {name: i for i, name in enumerate(SENTIMENTS)}

# Twitter Financial News sentiment ids -> model names.
TFNS_LABELS: dict[str, str] = {"0": "negative", "1": "positive", "2": "neutral"}
# Synonyms accepted everywhere a sentiment name is read.
SENTIMENT_SYNONYMS: dict[str, str] = {
    "negative": "negative",
    "neg": "negative",
    "bearish": "negative",
    "neutral": "neutral",
    "neu": "neutral",
    "positive": "positive",
    "pos": "positive",
    "bullish": "positive",
}
PRESETS: dict[str, dict[str, str]] = {
    "tfns": TFNS_LABELS,
    "topic": {str(i): name for i, name in enumerate(TOPICS)},
    "fpb": {name: name for name in SENTIMENTS},
}
TASKS = ("sentiment", "topic")


def labels_for(task: str) -> tuple[str, ...]:
    if task == "sentiment":
        return SENTIMENTS
    if task == "topic":
        return TOPICS
    raise UserError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")


def _norm(label: object) -> str:
    text = str(label).strip()
    # pandas reads an integer column with missing values as floats: "2.0" -> "2"
    if re.fullmatch(r"-?\d+\.0+", text):
        text = text.split(".")[0]
    return text


def default_label_map(task: str) -> dict[str, str]:
    """Raw label -> model name accepted without a ``--label-map``.

    Names (any case, sentiment synonyms such as Bearish/Bullish) always work.
    Numeric ids are read as the data sets' ids: topic ids 0-19 of the README,
    sentiment ids of the Twitter Financial News set (0 Bearish, 1 Bullish,
    2 Neutral).
    """
    mapping: dict[str, str] = {}
    if task == "topic":
        for i, name in enumerate(TOPICS):
            mapping[str(i)] = name
            mapping[name.lower()] = name
    else:
        mapping.update(TFNS_LABELS)
        mapping.update(SENTIMENT_SYNONYMS)
    return mapping


def resolve_label_map(task: str, spec: str | None) -> dict[str, str]:
    """Parse a ``--label-map`` value: a preset name, inline JSON or a JSON file.

    The JSON is an object ``{"raw label": "model label name or id"}``; the
    values may be model names (case-insensitive) or model ids.
    """
    names = labels_for(task)
    if spec is None:
        return default_label_map(task)
    if spec in PRESETS:
        raw = dict(PRESETS[spec])
    else:
        text = spec
        path = Path(spec)
        if not spec.lstrip().startswith("{"):
            if not path.is_file():
                raise UserError(
                    f"--label-map {spec!r}: not a preset ({', '.join(PRESETS)}), "
                    "not inline JSON and not a file"
                )
            text = path.read_text(encoding="utf-8")
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"--label-map: invalid JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise UserError("--label-map: expected a JSON object {raw label: model label}")
    by_lower = {n.lower(): n for n in names}
    out: dict[str, str] = {}
    for key, value in raw.items():
        v = _norm(value)
        if v.lower() in by_lower:
            out[_norm(key)] = by_lower[v.lower()]
        elif task == "sentiment" and v.lower() in SENTIMENT_SYNONYMS:
            out[_norm(key)] = SENTIMENT_SYNONYMS[v.lower()]
        elif v.isdigit() and int(v) < len(names):
            out[_norm(key)] = names[int(v)]
        else:
            raise UserError(f"--label-map: {value!r} is not a {task} label ({', '.join(names)})")
    return out


def map_labels(task: str, labels: Iterable[object], mapping: Mapping[str, str]) -> list[int]:
    """Raw labels -> model ids; unknown labels raise a :class:`UserError`."""
    names = labels_for(task)
    index = {n: i for i, n in enumerate(names)}
    lower = {k.lower(): v for k, v in mapping.items()}
    out: list[int] = []
    unknown: set[str] = set()
    for label in labels:
        key = _norm(label)
        name = mapping.get(key) or lower.get(key.lower())
        if name is None:
            unknown.add(key)
            continue
        out.append(index[name])
    if unknown:
        shown = ", ".join(sorted(unknown)[:10])
        raise UserError(
            f"unknown {task} label(s): {shown}; known: {', '.join(sorted(mapping))[:400]} "
            "(pass --label-map)"
        )
    return out


def check_label_names(task: str, names: Sequence[str]) -> None:
    """A checkpoint's label list must be the model's (same names, same order)."""
    expected = labels_for(task)
    if tuple(names) != expected:
        raise UserError(f"checkpoint {task} labels {list(names)} differ from {list(expected)}")
