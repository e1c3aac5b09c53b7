"""Classification metrics: accuracy, macro/weighted F1, per-class scores, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def classification_report(y_true: Sequence[int], y_pred: Sequence[int], names: Sequence[str]) -> dict:
    """Metrics as a JSON-ready dict; rows of ``confusion`` are true labels, columns predictions."""
    yt = np.asarray(y_true, dtype=np.int64)
    yp = np.asarray(y_pred, dtype=np.int64)
    k = len(names)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (yt, yp), 1)
    tp = np.diag(cm).astype(float)
    support = cm.sum(1).astype(float)
    predicted = cm.sum(0).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = (support + predicted) > 0  # classes in y_true or y_pred, as scikit-learn
    n = len(yt)
    return {
        "n": int(n),
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "weighted_f1": float((f1 * support).sum() / support.sum()) if n else 0.0,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
        "labels": list(names),
        "confusion": cm.tolist(),
    }


def format_report(report: dict, title: str = "") -> str:
    """Human-readable table of a :func:`classification_report`."""
    lines = []
    if title:
        lines.append(title)
    lines.append(
        f"n={report['n']}  accuracy={report['accuracy']:.4f}  macro-F1={report['macro_f1']:.4f}  "
        f"weighted-F1={report['weighted_f1']:.4f}"
    )
    names = report["labels"]
    width = max(12, max(len(n) for n in names) + 1)
    lines.append(f"{'class':<{width}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}")
    for name in names:
        pc = report["per_class"][name]
        lines.append(
            f"{name:<{width}} {pc['precision']:9.4f} {pc['recall']:9.4f} {pc['f1']:9.4f} {pc['support']:8d}"
        )
    lines.append("")
    lines.append("confusion matrix (rows: true, columns: predicted)")
    short = [str(i) for i in range(len(names))] if len(names) > 3 else [n[:8] for n in names]
    cw = max(5, max(len(s) for s in short) + 1, len(str(max(max(r) for r in report["confusion"]))) + 1)
    lines.append(" " * (width + 4) + "".join(f"{s:>{cw}}" for s in short))
    for i, (name, row) in enumerate(zip(names, report["confusion"])):
        label = f"{i:>2} {name}" if len(names) > 3 else f"   {name}"
        lines.append(f"{label:<{width + 4}}" + "".join(f"{v:>{cw}}" for v in row))
    return "\n".join(lines)
