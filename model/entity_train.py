"""``finsent train-entities``: add the per-entity sentiment head to a checkpoint (issue 22).

Starts from a trained checkpoint (``--init``, default the shipped one) and trains, in one loop:

* the **entity head** (:class:`model.network.FinsentModel` with ``entity=True``) on entity labels: SEntFiN's
  training part, weak single-company labels on the headline sets and contrast pairs
  (:mod:`model.entity_data`);
* the **headline heads** as the init checkpoint had them: ``alpha`` x cross-entropy on the labelled headline
  sets + (1 - alpha) x T^2 x KL to the init checkpoint's own logits (computed once, ONNX fp32) on every text,
  so fine-tuning the shared encoder for entities does not drift the headline answers;

with the encoder shared.  After each epoch: the headline validation splits (the same split as ``finsent
train``), SEntFiN's held-out part and any ``--eval`` files; the epoch kept is the best by the mean of the
three headline macro-F1s, SEntFiN's per-entity macro-F1 and its accuracy on texts whose entities disagree.
Resumable like ``finsent train`` (``.OUT.resume.pt``, SIGTERM saves after the step).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from model.checkpoint import CheckpointConfig, load_checkpoint, load_tokenizer, read_config, save_checkpoint
from model.data import SOURCES, default_data_dir, load_splits
from model.engine import select_device
from model.entities import token_mask
from model.entity_data import (
    SENTFIN_FILE,
    EntityText,
    analyst_roles,
    contrast_pairs,
    read_entity_jsonl,
    split_by_text,
    weak_labels,
)
from model.metrics import classification_report
from model.network import FinsentModel
from model.tokens import load_tokenizer_file
from model.train import (
    IGNORE,
    SAVE_DTYPES,
    ResumableRun,
    _batches,
    _class_weights,
    adamw,
    fit,
    optimizer_step,
    running_loss,
    seed_everything,
    training_amp,
    warmup_linear,
)
from stream.base.errors import UserError
from stream.base.labels import SENTIMENTS, TOPICS

log = logging.getLogger(__name__)

ENTITY_HEAD = {"features": "mean of the entity's mention tokens, beside the text's mean-pooled vector",
               "layers": "Linear(2H, H), GELU, dropout, Linear(H, 3)",
               "absent": "an entity the text does not contain gets the headline's sentiment"}


@dataclass
class EntityTrainConfig:
    init: Path | None = None  # checkpoint to start from (None: the shipped one)
    out: Path = Path("model/checkpoint")
    data: Path | None = None
    eval_files: tuple[Path, ...] = ()
    epochs: int = 4
    batch_size: int = 32
    lr: float = 3e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.06
    patience: int = 2
    alpha: float = 0.3  # hard-label share of the headline loss (1 - alpha: KL to the init model)
    temperature: float = 2.0
    entity_weight: float = 1.0
    label_smoothing: float = 0.1
    entity_val_fraction: float = 0.15
    val_fraction: float = 0.1  # of the headline sets (finsent train's split)
    seed: int = 13
    weak: bool = True
    analyst: bool = True  # analyst calls: the broker neutral, the company covered the headline's label
    contrast: int = 2000
    no_fpb: bool = False
    device: str = "auto"
    save_dtype: str = "float16"
    version: str | None = None
    progress: bool = True
    resume: bool = True
    save_every_s: float = 900.0
    cpu_amp: str = "auto"

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, Path):
                d[k] = str(v)
            elif isinstance(v, tuple):
                d[k] = [str(x) for x in v]
        return d


@dataclass
class Example:
    ids: list[int]
    topic: int = IGNORE
    sentiment: int = IGNORE
    entities: list[tuple[np.ndarray, int]] = field(default_factory=list)  # (token mask, label)


def _resume_key(cfg: EntityTrainConfig) -> dict:
    skip = ("out", "progress", "resume", "save_every_s", "version", "device", "eval_files")
    return {k: v for k, v in cfg.to_json().items() if k not in skip}


def encode(tok, texts: list[str]) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
    encs = tok.encode_batch(list(texts), add_special_tokens=True)
    return [e.ids for e in encs], [list(e.offsets) for e in encs]


def entity_examples(tok, rows: list[EntityText]) -> list[Example]:
    ids, offsets = encode(tok, [r.text for r in rows])
    out = []
    for r, i, off in zip(rows, ids, offsets):
        ents = [(token_mask(off, e.spans), e.label) for e in r.entities]
        ents = [(m, y) for m, y in ents if m.any()]  # a mention cut off by truncation has no token left
        out.append(Example(i, entities=ents))
    return out


def init_logits(init: Path | None, texts: list[str], cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """The init checkpoint's topic and sentiment logits for ``texts`` (ONNX fp32, cached by content)."""
    from model.engine import load_engine

    h = hashlib.sha256(read_config(init).model_version.encode())
    for t in texts:
        h.update(t.encode() + b"\0")
    path = cache.with_name(f"{cache.name}.{h.hexdigest()[:16]}.npz")
    if path.is_file():
        with np.load(path) as z:
            return z["topic"], z["sentiment"]
    engine = load_engine(init, "cpu", cpu_path="onnx", warmup=False)
    topic, sent = [], []
    step = 2048
    for s in range(0, len(texts), step):
        t, se = engine.predict_logits(texts[s : s + step])
        topic.append(t)
        sent.append(se)
        print(f"  init logits {min(s + step, len(texts))}/{len(texts)}", file=sys.stderr)
    out = np.concatenate(topic), np.concatenate(sent)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, topic=out[0], sentiment=out[1])
    os.replace(tmp, path)
    return out


def collate(examples: list[Example], idx: np.ndarray, pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(examples[j].ids) for j in idx)
    n_ent = max([1] + [len(examples[j].entities) for j in idx])
    ids = np.full((len(idx), width), pad_id, np.int64)
    emask = np.zeros((len(idx), n_ent, width), np.float32)
    elab = np.full((len(idx), n_ent), IGNORE, np.int64)
    for r, j in enumerate(idx):
        ex = examples[j]
        ids[r, : len(ex.ids)] = ex.ids
        for e, (m, y) in enumerate(ex.entities):
            emask[r, e, : len(m)] = m
            elab[r, e] = y
    return {"ids": torch.from_numpy(ids), "entity_mask": torch.from_numpy(emask), "entity_label": torch.from_numpy(elab)}


@torch.inference_mode()
def predict_entities(model: FinsentModel, examples: list[Example], device, pad_id: int, amp,
                     batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(labels, entity probabilities) of every labelled entity of ``examples``, in order."""
    model.eval()
    labels, probs = [], []
    for s in range(0, len(examples), batch_size):
        idx = np.arange(s, min(s + batch_size, len(examples)))
        b = collate(examples, idx, pad_id)
        ids = b["ids"].to(device)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            _, _, ent = model(ids, ids.ne(pad_id), b["entity_mask"].to(device))
        p = ent.float().softmax(-1).cpu().numpy()
        lab = b["entity_label"].numpy()
        keep = lab != IGNORE
        labels.append(lab[keep])
        probs.append(p[keep])
    return np.concatenate(labels), np.concatenate(probs)


def entity_report(labels: np.ndarray, probs: np.ndarray, disagree: np.ndarray) -> dict[str, Any]:
    """Per-entity accuracy / macro-F1, accuracy on entities of texts whose entities disagree, and the sign
    of the score on those with opposite (positive vs negative) labels."""
    pred = probs.argmax(1)
    rep = classification_report(labels, pred, SENTIMENTS)
    score = probs[:, 2] - probs[:, 0]
    opp = disagree & (labels != SENTIMENTS.index("neutral"))
    sign_ok = np.where(labels == SENTIMENTS.index("positive"), score > 0, score < 0)
    return {
        "entities": len(labels), "accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"],
        "disagree_entities": int(disagree.sum()),
        "disagree_accuracy": float((pred[disagree] == labels[disagree]).mean()) if disagree.any() else None,
        "opposite_sign_right": float(sign_ok[opp].mean()) if opp.any() else None,
    }


def _disagree_flags(rows: list[EntityText], examples: list[Example]) -> np.ndarray:
    return np.array([r.disagree for r, ex in zip(rows, examples) for _ in ex.entities], bool)


def train_entities(cfg: EntityTrainConfig) -> Path:
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    device = select_device(cfg.device)
    seed_everything(cfg.seed)
    data_dir = Path(cfg.data) if cfg.data else default_data_dir()
    sentfin_path = data_dir / SENTFIN_FILE
    if not sentfin_path.is_file():
        raise UserError(f"{sentfin_path} not found (SEntFiN 1.0, see ../shared/data/README.md)")

    model, ck0, tokenizer_hf, tok = _entity_model(cfg.init)
    pad_id = int(tokenizer_hf.pad_token_id or 0)
    model.to(device)

    data = _EntityData.load(cfg, data_dir, sentfin_path, tok)
    examples = data.examples
    topic_t = torch.tensor([e.topic for e in examples])
    sent_t = torch.tensor([e.sentiment for e in examples])
    lengths = np.array([len(e.ids) for e in examples])
    kd_topic_t, kd_sent_t = torch.from_numpy(data.kd_topic), torch.from_numpy(data.kd_sent)
    print(f"train-entities: {len(examples)} texts ({', '.join(f'{s.key} {len(s.train_text)}' for s in data.splits)}, "
          f"sentfin {len(data.sf_train)}, contrast {len(data.contrast)}), "
          f"{sum(len(e.entities) for e in examples)} labelled entities "
          f"(headline sets {sum(1 for e in examples[:data.n_headline] if e.entities)} texts, {data.n_analyst} of "
          f"them analyst calls); "
          f"val: sentfin {len(data.sf_val)} texts; device {device}", file=sys.stderr)

    tw = _class_weights([int(y) for y in topic_t if y != IGNORE], len(TOPICS), 0.5)
    topic_loss = nn.CrossEntropyLoss(weight=None if tw is None else tw.to(device), ignore_index=IGNORE,
                                     label_smoothing=cfg.label_smoothing)
    sent_loss = nn.CrossEntropyLoss(ignore_index=IGNORE, label_smoothing=cfg.label_smoothing)
    ent_loss = nn.CrossEntropyLoss(ignore_index=IGNORE, label_smoothing=cfg.label_smoothing / 2)

    enc = [(n, p) for n, p in model.named_parameters() if not n.startswith("entity_head.")]
    opt = adamw(enc, list(model.entity_head.parameters()), cfg.weight_decay, cfg.lr, cfg.head_lr, device)
    sched = warmup_linear(opt, cfg.warmup, math.ceil(len(examples) / cfg.batch_size) * cfg.epochs)
    amp_dtype, scaler = training_amp(device, cfg.cpu_amp)
    rng = np.random.default_rng(cfg.seed)
    run = ResumableRun(cfg.out, _resume_key(cfg), model, opt, sched, scaler, rng, cfg.save_every_s)
    if cfg.resume:
        run.restore()
    T = cfg.temperature
    shown: dict = {}

    def kd(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return F.kl_div(F.log_softmax(student.float() / T, -1), F.softmax(teacher.float() / T, -1),
                        reduction="batchmean") * T * T

    def train_step(bar, step: int, first: int, idx) -> None:
        b = collate(examples, idx, pad_id)
        ids = b["ids"].to(device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            t_logits, s_logits, e_logits = model(ids, ids.ne(pad_id), b["entity_mask"].to(device))
        ty, sy = topic_t[idx].to(device), sent_t[idx].to(device)
        loss = (1 - cfg.alpha) * (kd(t_logits, kd_topic_t[idx].to(device))
                                  + kd(s_logits, kd_sent_t[idx].to(device)))
        if (ty != IGNORE).any():
            loss = loss + cfg.alpha * topic_loss(t_logits.float(), ty)
        if (sy != IGNORE).any():
            loss = loss + cfg.alpha * sent_loss(s_logits.float(), sy)
        ey = b["entity_label"].to(device)
        if (ey != IGNORE).any():
            loss = loss + cfg.entity_weight * ent_loss(e_logits.float().flatten(0, 1), ey.flatten())
        optimizer_step(model, opt, sched, scaler, loss)
        running_loss(bar, loss, step, first, shown, sched.get_last_lr()[0])

    def evaluate(epoch: int) -> dict:
        row, _ = evaluate_epoch(model, data.splits, data.head_val, data.val_examples, data.val_rows, device, pad_id,
                                amp_dtype)
        return {"epoch": epoch, **row, "elapsed_s": round(time.perf_counter() - run.started, 1)}

    fit(run, model, cfg.epochs, lambda: _batches(lengths, cfg.batch_size, rng), "epoch", cfg.progress, train_step,
        evaluate, cfg.patience)
    train_s = time.perf_counter() - run.started
    model.load_state_dict(run.best.state)
    model.cpu().eval()
    return _save_entities(cfg, model, tokenizer_hf, ck0, data, run, train_s, pad_id)


def _save_entities(cfg: EntityTrainConfig, model, tokenizer_hf, ck0, data: _EntityData, run: ResumableRun,
                   train_s: float, pad_id: int) -> Path:
    """The final validation on the CPU, the checkpoint and its metrics.json."""
    _, reports = evaluate_epoch(model, data.splits, data.head_val, data.val_examples, data.val_rows,
                                torch.device("cpu"), pad_id, None)
    ck = save_checkpoint(model, tokenizer_hf, cfg.out, _entity_checkpoint(cfg, ck0, data, run, train_s),
                         dtype=SAVE_DTYPES[cfg.save_dtype], version_prefix="finsent-minilm6-ent")
    metrics = {"model_version": ck.model_version, "selection_score": "mean of the headline macro-F1s, SEntFiN "
               "per-entity macro-F1 and accuracy on disagreeing entities (held-out parts)",
               "best_epoch": run.best.epoch, "validation": reports, "history": run.history}
    (Path(cfg.out) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    run.done()
    print(f"saved {cfg.out} ({ck.model_version}); best epoch {run.best.epoch}", file=sys.stderr)
    return Path(cfg.out)


def _entity_model(init: Path | None):
    """The initial checkpoint's model with a new entity head: (model, its config, HF tokenizer, fast tokenizer)."""
    model0, _, ck0, init_dir = load_checkpoint(init)
    tokenizer_hf = load_tokenizer(init_dir)
    tok = load_tokenizer_file(init_dir, ck0.max_length)
    model = FinsentModel(model0.encoder.config, len(TOPICS), len(SENTIMENTS), entity=True)
    missing, unexpected = model.load_state_dict(model0.state_dict(), strict=False)
    if unexpected or any(not k.startswith("entity_head.") for k in missing):
        raise UserError(f"{init_dir}: weights do not fit ({missing[:3]} {unexpected[:3]})")
    return model, ck0, tokenizer_hf, tok


@dataclass
class _EntityData:
    """What ``train-entities`` learns from: the headline splits with their entity labels (weak labels,
    analyst calls), SEntFiN, contrast pairs, the initial model's logits to distil, and the validation sets."""

    splits: list
    sf_train: list[EntityText]
    sf_val: list[EntityText]
    weak_rows: list[EntityText]
    contrast: list[EntityText]
    examples: list[Example]
    n_headline: int
    n_analyst: int
    kd_topic: np.ndarray
    kd_sent: np.ndarray
    val_examples: dict
    val_rows: dict
    head_val: dict

    @classmethod
    def load(cls, cfg: EntityTrainConfig, data_dir: Path, sentfin_path: Path, tok) -> _EntityData:
        include = [s.key for s in SOURCES if not (cfg.no_fpb and s.key == "fpb")]
        splits = load_splits(data_dir, cfg.val_fraction, cfg.seed, include)
        sentfin = read_entity_jsonl(sentfin_path, "sentfin")
        sf_train, sf_val = split_by_text(sentfin, cfg.entity_val_fraction, cfg.seed)
        from stream.linking import default_linker  # here: the linker's tables load in ~1 s

        weak_rows: list[EntityText] = []
        if cfg.weak:
            for s in splits:
                if s.task == "sentiment":
                    weak_rows += weak_labels(s.train_inputs, s.train_label, f"weak-{s.key}", default_linker())
        contrast = contrast_pairs([r for r in weak_rows if r.source == "weak-tfns"], cfg.contrast, cfg.seed)
        kd_texts = [t for s in splits for t in s.train_inputs] + [r.text for r in sf_train + contrast]
        kd_topic, kd_sent = init_logits(cfg.init, kd_texts,
                                        Path(cfg.out).with_name(f".{Path(cfg.out).name}.init-logits"))
        examples, n_analyst = _headline_examples(cfg, splits, tok, weak_rows, kd_sent, default_linker())
        n_headline = len(examples)
        for rows in (sf_train, contrast):
            examples += entity_examples(tok, rows)
        val_examples = {"sentfin": entity_examples(tok, sf_val)}
        val_rows = {"sentfin": sf_val}
        for f in cfg.eval_files:
            rows = read_entity_jsonl(Path(f))
            val_rows[Path(f).stem] = rows
            val_examples[Path(f).stem] = entity_examples(tok, rows)
        head_val = {s.key: encode(tok, list(s.val_inputs))[0] for s in splits}
        return cls(splits, sf_train, sf_val, weak_rows, contrast, examples, n_headline, n_analyst, kd_topic, kd_sent,
                   val_examples, val_rows, head_val)


def _headline_examples(cfg: EntityTrainConfig, splits, tok, weak_rows: list[EntityText], kd_sent: np.ndarray,
                       linker) -> tuple[list[Example], int]:
    """The headline splits' examples, with the entities of analyst calls and of weak labels; (examples, how
    many have analyst-call entities)."""
    examples: list[Example] = []
    weak_by_text = {r.text: r for r in weak_rows}
    n_analyst = 0
    for s in splits:
        ids, offsets = encode(tok, list(s.train_inputs))
        for text, i, off, y in zip(s.train_inputs, ids, offsets, s.train_label):
            ex = Example(i, topic=y if s.task == "topic" else IGNORE, sentiment=y if s.task == "sentiment" else IGNORE)
            roles = analyst_roles(text, linker) if cfg.analyst else None
            if roles is not None:
                brokers, companies = roles
                covered = y if s.task == "sentiment" else int(kd_sent[len(examples)].argmax())
                ex.entities.append((token_mask(off, brokers), SENTIMENTS.index("neutral")))
                if len(companies) == 1:
                    ex.entities.append((token_mask(off, companies[0][1]), covered))
                ex.entities = [(m, lab) for m, lab in ex.entities if m.any()]
                n_analyst += bool(ex.entities)
            elif (w := weak_by_text.get(text)) is not None and w.entities[0].label == y:
                m = token_mask(off, w.entities[0].spans)
                if m.any():
                    ex.entities.append((m, y))
            examples.append(ex)
    return examples, n_analyst


def _entity_checkpoint(cfg: EntityTrainConfig, ck0, data: _EntityData, run: ResumableRun,
                       train_s: float) -> CheckpointConfig:
    return CheckpointConfig(
        model_version=cfg.version or "",
        encoder=ck0.encoder, max_length=ck0.max_length, base_model=ck0.base_model, label_maps=ck0.label_maps,
        licence=ck0.licence + "; entity head: SEntFiN 1.0 (MIT)",
        entity_head=dict(ENTITY_HEAD),
        training={
            **{k: v for k, v in ck0.training.items() if k not in ("config",)},
            "init": {"model_version": ck0.model_version, "training": ck0.training.get("config")},
            "entity_config": cfg.to_json(),
            "entity_data": {"sentfin": {"file": SENTFIN_FILE, "licence": "MIT", "train_texts": len(data.sf_train),
                                        "val_texts": len(data.sf_val)},
                            "weak": {"texts": len(data.weak_rows), "sources": sorted({r.source for r in data.weak_rows})},
                            "analyst_calls": data.n_analyst,
                            "contrast": len(data.contrast)},
            "entity_best_epoch": run.best.epoch, "entity_train_seconds": round(train_s, 1),
        },
    )


def evaluate_epoch(model, splits, head_val, val_examples, val_rows, device, pad_id, amp) -> tuple[dict, dict]:
    """(history row with ``score``, full reports) on the headline splits and the entity sets."""
    from model.train import predict_ids

    reports: dict[str, Any] = {}
    row: dict[str, Any] = {}
    for s in splits:
        topic, sent = predict_ids(model, head_val[s.key], device, pad_id, amp)
        pred = topic if s.task == "topic" else sent
        reports[s.key] = classification_report(s.val_label, pred, TOPICS if s.task == "topic" else SENTIMENTS)
        row[f"{s.key}_acc"] = reports[s.key]["accuracy"]
        row[f"{s.key}_f1"] = reports[s.key]["macro_f1"]
    for name, exs in val_examples.items():
        labels, probs = predict_entities(model, exs, device, pad_id, amp)
        rep = entity_report(labels, probs, _disagree_flags(val_rows[name], exs))
        reports[f"entity_{name}"] = rep
        row[f"{name}_ent_f1"] = rep["macro_f1"]
        row[f"{name}_disagree_acc"] = rep["disagree_accuracy"] or 0.0
    sf = reports["entity_sentfin"]
    parts = [reports[s.key]["macro_f1"] for s in splits] + [sf["macro_f1"], sf["disagree_accuracy"] or 0.0]
    row["score"] = float(np.mean(parts))
    return row, reports
