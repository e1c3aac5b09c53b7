"""Where a checkpoint is and whether it is whole: light (no torch), for the serving path's start-up."""

from __future__ import annotations

import json
import os
from pathlib import Path

from stream.base.errors import UserError

FORMAT = "finsent-checkpoint/1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
SHIPPED_CHECKPOINT = Path(__file__).resolve().parent / "checkpoint"


def resolve_checkpoint(path: str | os.PathLike | None) -> Path:
    """``None`` -> the shipped checkpoint; checks that the directory is usable."""
    p = Path(path).expanduser() if path else SHIPPED_CHECKPOINT
    if not (p / CONFIG_FILE).is_file() or not (p / WEIGHTS_FILE).is_file():
        hint = "" if path else " (the shipped checkpoint is missing: run 'finsent train --out model/checkpoint')"
        raise UserError(f"no finsent checkpoint at {p}: need {CONFIG_FILE} and {WEIGHTS_FILE}{hint}")
    return p


def read_config_json(directory: Path) -> dict:
    """A checkpoint's ``config.json`` as a dict, checked: a finsent checkpoint with the known label names."""
    from model.labels import check_label_names  # here: only when a checkpoint's labels are checked

    try:
        data = json.loads((Path(directory) / CONFIG_FILE).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{Path(directory) / CONFIG_FILE}: invalid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else None
        raise UserError(f"not a finsent checkpoint (format {got!r}, expected {FORMAT})")
    if "topics" in data:
        check_label_names("topic", data["topics"])
    if "sentiments" in data:
        check_label_names("sentiment", data["sentiments"])
    return data
