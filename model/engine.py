"""Batched inference engine: loaded once, then ``predict(texts)``.

* Texts are tokenized in one call, sorted by length and cut into micro-batches
  padded only to their own longest item (dynamic padding); results come back in
  input order.
* CUDA: the model stays resident in fp16 (bf16 on request), is warmed up at
  load, inputs travel through pinned memory, and all probabilities come back
  to the host in one copy per call.
* CPU: the path is chosen at load time from the processor's features and
  logged with the reason (``model.cpu``): bf16 where the processor has native
  bf16 (AVX-512 BF16 / AMX), int8 dynamic quantisation otherwise on x86 (VNNI
  or AVX2 kernels), fp32 elsewhere; ``FINSENT_CPU_PATH`` forces one.
  Micro-batches of 16 (measured fastest on 2 cores); torch threads limited to
  the CPUs this process may use.
* ``predict`` holds a lock, so it is safe from one executor thread (and from
  several, serialised).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import numpy as np
import torch

from model.checkpoint import load_checkpoint
from model.cpu import ENV_VAR as CPU_PATH_ENV, cpu_features, prepare_cpu_model, select_cpu_path
from stream.base.labels import SENTIMENTS, TOPICS
from model.text import model_input
from stream.base.errors import UserError

__all__ = [
    "Engine",
    "Prediction",
    "SENTIMENTS",
    "TOPICS",
    "build_text",
    "load_engine",
    "select_device",
    "select_dtype",
]

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}
CPU_BATCH = 16
CUDA_BATCH = 256


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

    def to_dict(self) -> dict:
        return asdict(self)


def build_text(title: str | None, summary: str | None = None) -> str:
    """The text the model reads for an article: :func:`model.text.model_input` (the one input contract)."""
    return model_input(title, summary)


def cpu_supports_bf16() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - build without oneDNN
        return False


def select_device(device: str | None = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is a user error."""
    name = (device or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("device 'cuda' requested but no CUDA GPU is available (use --device cpu or auto)")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise UserError(f"unknown device {device!r}: use auto, cpu or cuda")


def select_dtype(device: torch.device, dtype: str | torch.dtype | None = None) -> torch.dtype:
    """Inference dtype: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32."""
    if isinstance(dtype, torch.dtype):
        chosen = dtype
    elif dtype in (None, "", "auto"):
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if cpu_supports_bf16() else torch.float32
    else:
        try:
            chosen = DTYPES[str(dtype).lower()]
        except KeyError:
            raise UserError(f"unknown dtype {dtype!r}: use auto, float32, float16 or bfloat16") from None
    if device.type == "cpu" and chosen == torch.float16:
        raise UserError("float16 is not a CPU inference dtype here: use bfloat16 or float32")
    return chosen


def configure_cpu_threads(threads: int | None = None) -> int:
    """Use the CPUs this process may run on (not more), unless told otherwise."""
    if threads is None:
        if os.environ.get("OMP_NUM_THREADS"):
            return torch.get_num_threads()
        try:
            allowed = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            allowed = os.cpu_count() or 1
        threads = max(1, min(torch.get_num_threads(), allowed))
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads


class Engine:
    """A loaded checkpoint ready for batched prediction (see module docstring)."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        *,
        model_version: str,
        max_length: int,
        device: torch.device,
        dtype: torch.dtype,
        batch_size: int | None = None,
        checkpoint_dir: str | None = None,
        cpu_path: str | None = None,
        cpu_reason: str | None = None,
    ):
        if device.type == "cpu" and cpu_path is not None:
            self.model = prepare_cpu_model(model, cpu_path)  # bf16 / int8 / fp32 (model.cpu)
        else:
            self.model = model.to(device=device, dtype=dtype).eval()
            for p in self.model.parameters():
                p.requires_grad_(False)
        self.cpu_path = cpu_path if device.type == "cpu" else None
        self.cpu_reason = cpu_reason if device.type == "cpu" else None
        self.tokenizer = tokenizer
        self.model_version = model_version
        self.max_length = int(max_length)
        self._device = device
        self.dtype = dtype
        self.batch_size = int(batch_size or (CUDA_BATCH if device.type == "cuda" else CPU_BATCH))
        self.checkpoint_dir = checkpoint_dir
        self.pad_id = int(tokenizer.pad_token_id or 0)
        self._lock = threading.Lock()
        self._pin = device.type == "cuda"
        self.last_tokenize_s = 0.0  # seconds the last predict() spent in the tokenizer

    # -- public ---------------------------------------------------------
    @property
    def device(self) -> str:
        return self._device.type

    def describe(self) -> dict:
        return {
            "model_version": self.model_version,
            "device": self.device,
            "dtype": str(self.dtype).replace("torch.", ""),
            "batch_size": self.batch_size,
            "max_length": self.max_length,
            "threads": torch.get_num_threads() if self.device == "cpu" else None,
            "checkpoint": self.checkpoint_dir,
            "cpu_path": self.cpu_path,
            "cpu_path_reason": self.cpu_reason,
        }

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Classify ``texts``; one :class:`Prediction` per text, in input order."""
        topic_p, sent_p = self.predict_proba(texts)
        if len(texts) == 0:
            return []
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
                )
            )
        return out

    def predict_proba(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Topic (N x 20) and sentiment (N x 3) probabilities, float32, input order."""
        if isinstance(texts, str):
            raise TypeError("predict() takes a sequence of texts, not one string")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"text {i} is {type(t).__name__}, not str")
        n = len(texts)
        if n == 0:
            return np.zeros((0, len(TOPICS)), np.float32), np.zeros((0, len(SENTIMENTS)), np.float32)
        with self._lock:
            t0 = time.perf_counter()
            ids = self.tokenize(texts)
            self.last_tokenize_s = time.perf_counter() - t0  # the worker's per-stage breakdown
            return self._run(ids)

    def predict_logits(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Raw topic (N x 20) and sentiment (N x 3) logits, float32, input order (distillation)."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(TOPICS)), np.float32), np.zeros((0, len(SENTIMENTS)), np.float32)
        with self._lock:
            return self._run(self.tokenize(texts), softmax=False)

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(
            texts,
            add_special_tokens=True,
            truncation=True,
            max_length=self.max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]

    def warmup(self) -> float:
        """Run a few batches of typical shapes (kernel selection, allocator, oneDNN primitives)."""
        start = time.perf_counter()
        words = "shares of acme corp rose after quarterly earnings beat analyst estimates".split()
        lengths = (4, 12, 24, 40, 60) if self.device == "cuda" else (8, 24)
        texts = [" ".join((words * 12)[: lengths[i % len(lengths)]]) for i in range(2 * self.batch_size)]
        self.predict(texts)
        self.predict(texts[:1])
        if self.device == "cuda":
            torch.cuda.synchronize(self._device)
        return time.perf_counter() - start

    # -- internals ------------------------------------------------------
    def _batches(self, lengths: np.ndarray) -> Iterable[np.ndarray]:
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(order), self.batch_size):
            yield order[start : start + self.batch_size]

    @torch.inference_mode()
    def _run(self, ids: list[list[int]], softmax: bool = True) -> tuple[np.ndarray, np.ndarray]:
        n = len(ids)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=n)
        topic_parts, sent_parts, index_parts = [], [], []
        for idx in self._batches(lengths):
            width = int(lengths[idx].max())
            arr = np.full((len(idx), width), self.pad_id, dtype=np.int64)
            for row, j in enumerate(idx):
                arr[row, : lengths[j]] = ids[j]
            batch = torch.from_numpy(arr)
            if self._pin:
                batch = batch.pin_memory().to(self._device, non_blocking=True)
            mask = batch.ne(self.pad_id)
            topic_logits, sent_logits = self.model(batch, mask)
            topic_parts.append(topic_logits.float().softmax(-1) if softmax else topic_logits.float())
            sent_parts.append(sent_logits.float().softmax(-1) if softmax else sent_logits.float())
            index_parts.append(idx)
        topic = torch.cat(topic_parts).cpu().numpy()
        sent = torch.cat(sent_parts).cpu().numpy()
        order = np.concatenate(index_parts)
        topic_out = np.empty_like(topic)
        sent_out = np.empty_like(sent)
        topic_out[order] = topic
        sent_out[order] = sent
        return topic_out, sent_out


def load_engine(
    path: str | os.PathLike | None = None,
    device: str | None = "auto",
    *,
    dtype: str | torch.dtype | None = None,
    batch_size: int | None = None,
    threads: int | None = None,
    warmup: bool = True,
    cpu_path: str | None = None,
) -> Engine:
    """Load a checkpoint (``None`` = the shipped one) for inference.

    ``device``: auto | cpu | cuda.  ``dtype``: auto (fp16 on CUDA; on CPU the
    path of :func:`model.cpu.select_cpu_path`) or float32 / float16 / bfloat16.
    ``cpu_path``: auto | bf16 | int8 | fp32 (default: ``FINSENT_CPU_PATH`` or auto;
    an explicit ``dtype`` on CPU picks the matching path).
    """
    started = time.perf_counter()
    dev = select_device(device)
    dt = select_dtype(dev, dtype)
    choice = None
    if dev.type == "cpu":
        configure_cpu_threads(threads)
        forced = cpu_path if cpu_path not in (None, "", "auto") else None
        if forced is None and dtype not in (None, "", "auto"):
            forced = "bf16" if dt == torch.bfloat16 else "fp32"
        if forced is None:
            forced = os.environ.get(CPU_PATH_ENV) or None
        try:
            choice = select_cpu_path(cpu_features(), forced)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        dt = choice.dtype
    model, tokenizer, cfg, directory = load_checkpoint(path)
    engine = Engine(
        model,
        tokenizer,
        model_version=cfg.model_version,
        max_length=cfg.max_length,
        device=dev,
        dtype=dt,
        batch_size=batch_size,
        checkpoint_dir=str(directory),
        cpu_path=choice.path if choice else None,
        cpu_reason=choice.reason if choice else None,
    )
    if warmup:
        engine.warmup()
    log.info(
        "model %s loaded on %s (%s) in %.1fs%s",
        engine.model_version,
        engine.device,
        engine.cpu_path or str(dt).replace("torch.", ""),
        time.perf_counter() - started,
        f"; CPU path {choice.path}: {choice.reason}" if choice else "",
    )
    return engine
