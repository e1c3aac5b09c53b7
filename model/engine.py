"""Inference: ``load_engine()`` once, then ``engine.predict(texts)``.

``load_engine`` picks the device and, on CPU, the path (:func:`model.cpu.select_cpu_path`, chosen from
the processor's features and logged with the reason), then loads one of two engines with the same API
(``predict``, ``predict_proba``, ``predict_logits``, ``tokenize``, ``warmup``, ``describe``):

* :class:`model.ort.OrtEngine` - ONNX Runtime on the checkpoint's fused ONNX graph (fp32 or int8),
  tokenized with ``tokenizers``: no torch, no transformers, so it starts in about a second;
* :class:`model.torch_engine.Engine` - torch: CUDA (resident fp16) and the torch CPU paths (bf16 on
  CPUs with native bf16, int8 dynamic quantisation, fp32).

This module imports neither torch nor onnxruntime itself (``Engine`` here is the protocol both
engines follow); the torch names it used to define (``select_device``, ``select_dtype``, ``DTYPES``,
...) are still reachable from here, imported on first use.  Both engines length-sort texts into micro-batches padded to their own longest
(:mod:`model.prediction`) and return results in input order; ``predict`` holds a lock.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Protocol

from model.cpu import ENV_VAR as CPU_PATH_ENV, ONNX_PATHS, cpu_features, fallback_from_onnx, select_cpu_path
from model.paths import resolve_checkpoint
from model.prediction import Prediction
from stream.base.errors import UserError
from stream.base.labels import SENTIMENTS, TOPICS
from stream.messages.text import model_input

__all__ = [
    "SENTIMENTS",
    "TOPICS",
    "Engine",
    "Prediction",
    "build_text",
    "load_engine",
    "select_device",  # noqa: F822 - lazy: module __getattr__ imports torch on first use
    "select_dtype",  # noqa: F822 - same
]

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
# torch-only names, imported from model.torch_engine on first use (module __getattr__ below)
_TORCH_NAMES = frozenset({"select_device", "select_dtype", "DTYPES", "CPU_BATCH", "CUDA_BATCH",
                          "cpu_supports_bf16", "configure_cpu_threads"})


class Engine(Protocol):
    """What both engines offer (:class:`model.ort.OrtEngine`, :class:`model.torch_engine.Engine`)."""

    model_version: str
    max_length: int
    batch_size: int
    last_tokenize_s: float  # seconds the last predict() spent in the tokenizer

    @property
    def device(self) -> str: ...

    def predict(self, texts: Sequence[str]) -> list[Prediction]: ...

    def predict_proba(self, texts: Sequence[str]) -> tuple: ...

    def predict_logits(self, texts: Sequence[str]) -> tuple: ...

    def tokenize(self, texts: list[str]) -> list[list[int]]: ...

    def warmup(self) -> float: ...

    def describe(self) -> dict: ...


def __getattr__(name: str):
    if name in _TORCH_NAMES:
        from model import torch_engine  # here: torch, 2-6 s of start-up, only on the torch paths

        return getattr(torch_engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_text(title: str | None, summary: str | None = None) -> str:
    """The text the model reads for an article: :func:`stream.messages.text.model_input` (the one input contract)."""
    return model_input(title, summary)


def _nvidia_driver() -> bool:
    """True when an NVIDIA driver is loaded (without it CUDA cannot be available: no need to import torch)."""
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")


def device_name(device: str | None = "auto") -> str:
    """``cpu`` or a CUDA device name; imports torch only when a GPU may be there."""
    name = (device or "auto").strip().lower()
    if name == "cpu" or (name == "auto" and "torch" not in sys.modules and not _nvidia_driver()):
        return "cpu"
    from model.torch_engine import select_device  # here: torch, 2-6 s of start-up, only on the torch paths

    return str(select_device(name))


def load_engine(
    path: str | os.PathLike | None = None,
    device: str | None = "auto",
    *,
    dtype=None,
    batch_size: int | None = None,
    threads: int | None = None,
    warmup: bool = True,
    cpu_path: str | None = None,
):
    """Load a checkpoint (``None`` = the shipped one) for inference.

    ``device``: auto | cpu | cuda.  ``dtype``: auto (fp16 on CUDA; on CPU the path of
    :func:`model.cpu.select_cpu_path`) or float32 / float16 / bfloat16 (a torch path).
    ``cpu_path``: auto | onnx | onnx-int8 | bf16 | int8 | fp32 (default: ``FINSENT_CPU_PATH`` or auto;
    an explicit ``dtype`` on CPU picks the matching torch path).
    """
    started = time.perf_counter()
    dev = device_name(device)
    if dev != "cpu":
        from model.torch_engine import (  # here: torch, 2-6 s of start-up, only on the torch paths
            load_torch_engine,
            select_device,
        )

        engine = load_torch_engine(path, select_device(dev), dtype=dtype, batch_size=batch_size, threads=threads,
                                   warmup=warmup)
        log.info("model %s loaded on %s (%s) in %.1fs", engine.model_version, engine.device,
                 str(engine.dtype).replace("torch.", ""), time.perf_counter() - started)
        return engine
    forced = cpu_path if cpu_path not in (None, "", "auto") else None
    if forced is None and dtype not in (None, "", "auto"):
        forced = "bf16" if str(dtype).replace("torch.", "").lower() in ("bfloat16", "bf16") else "fp32"
        if str(dtype).replace("torch.", "").lower() in ("float16", "fp16"):
            raise UserError("float16 is not a CPU inference dtype here: use bfloat16 or float32")
    if forced is None:
        forced = os.environ.get(CPU_PATH_ENV) or None
    try:
        choice = select_cpu_path(cpu_features(), forced)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if choice.runtime == "onnxruntime":
        from model import ort  # here: onnxruntime is optional (model.cpu falls back to torch without it)

        why_not = ort.supports(resolve_checkpoint(path)) if ort.available() else "onnxruntime not installed"
        engine = None
        if why_not is None:
            try:
                engine = ort.load_ort_engine(path, ONNX_PATHS[choice.path], batch_size=batch_size, threads=threads,
                                             warmup=warmup, cpu_path=choice.path, cpu_reason=choice.reason)
            except OSError as exc:  # e.g. an unwritable cache directory: the torch path still works
                why_not = f"ONNX cache: {exc}"
        if engine is not None:
            log.info("model %s loaded on cpu (%s, onnxruntime) in %.1fs%s; CPU path %s: %s",
                     engine.model_version, engine.dtype, time.perf_counter() - started,
                     f" (ONNX export {engine.export_s:.1f}s, cached)" if engine.export_s else "",
                     choice.path, choice.reason)
            return engine
        choice = fallback_from_onnx(choice, cpu_features(), why_not)
    from model.torch_engine import (  # here: torch, 2-6 s of start-up, only on the torch paths
        load_torch_engine,
        select_device,
    )

    engine = load_torch_engine(path, select_device("cpu"), choice=choice, batch_size=batch_size, threads=threads,
                               warmup=warmup)
    log.info("model %s loaded on cpu (%s) in %.1fs; CPU path %s: %s", engine.model_version, choice.path,
             time.perf_counter() - started, choice.path, choice.reason)
    return engine
