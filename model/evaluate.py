"""``finsent evaluate``: score a labelled CSV (``text,label``) and report accuracy, macro-F1 and
per-class scores (``model/cli.py`` parses the command line and prints)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from model.labels import map_labels, resolve_label_map
from model.metrics import classification_report
from stream.base.errors import UserError
from stream.base.labels import SENTIMENTS, TOPICS
from stream.messages.text import model_input

NUMERIC_SENTIMENT_NOTE = ("note: numeric sentiment labels read as Twitter Financial News ids "
                          "(0 Bearish=negative, 1 Bullish=positive, 2 Neutral); use --label-map to change")


@dataclass(frozen=True)
class Labelled:
    texts: list[str]
    y_true: list[int]
    numeric_sentiment_ids: bool  # sentiment labels given as TFNS ids (the caller says so)


def read_labelled(path: Path, task: str, label_map: str | None = None) -> Labelled:
    """The non-empty rows of a ``text,label`` CSV with their labels mapped to the task's class ids."""
    if not path.is_file():
        raise UserError(f"no such file: {path}")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"{path}: cannot read CSV ({exc})") from None
    if "text" not in df.columns or "label" not in df.columns:
        raise UserError(f"{path}: expected a header with columns text,label (found {', '.join(df.columns)})")
    df = df[df["text"].str.strip() != ""]
    if df.empty:
        raise UserError(f"{path}: no rows")
    y_true = map_labels(task, df["label"], resolve_label_map(task, label_map))
    numeric = (task == "sentiment" and label_map is None and df["label"].str.strip().str.fullmatch(r"\d+").all())
    return Labelled(list(df["text"]), y_true, bool(numeric))


def evaluate(engine, data: Labelled, task: str, source: str) -> dict:
    """Score ``data`` (read from ``source``) with ``engine``: the classification report plus model,
    engine and speed."""
    started = time.perf_counter()
    preds = engine.predict([model_input(t) for t in data.texts])  # the one input contract
    elapsed = time.perf_counter() - started
    if task == "topic":
        y_pred, names = [p.topic_id for p in preds], TOPICS
    else:
        y_pred, names = [SENTIMENTS.index(p.sentiment) for p in preds], SENTIMENTS
    report = classification_report(data.y_true, y_pred, names)
    report.update(
        task=task,
        data=source,
        model_version=engine.model_version,
        engine=engine.describe(),
        seconds=round(elapsed, 3),
        items_per_s=round(len(preds) / elapsed, 1) if elapsed else None,
    )
    return report
