"""The torch inference engine: CUDA (resident fp16) and the torch CPU paths (bf16, int8, fp32).

Loaded through :func:`model.engine.load_engine`, which picks this engine or the ONNX Runtime one
(:mod:`model.ort`); imported only when torch is needed (torch and transformers cost seconds to import).

* Texts are tokenized in one call, sorted by length and cut into micro-batches
  padded only to their own longest item (dynamic padding; :mod:`model.prediction`);
  results come back in input order.
* CUDA: the model stays resident in fp16 (bf16 on request), is warmed up at
  load, inputs travel through pinned memory, and all probabilities come back
  to the host in one copy per call.
* CPU: the path chosen by :func:`model.cpu.select_cpu_path` (bf16 / int8 / fp32 here).
  Micro-batches of 16 (measured fastest on 2 cores); torch threads limited to
  the CPUs this process may use.
* Batch invariance (a text's outputs depend on the text, not on its batch-mates): a micro-batch holds
  texts of one token length only, so nothing is padded (``length_batches(exact=True)``); the int8 path,
  whose activation scale is computed over the whole micro-batch, runs each text alone.
* ``predict`` holds a lock, so it is safe from one executor thread (and from
  several, serialised).
"""

from __future__ import annotations

import logging
import os
import threading
import time

import numpy as np
import torch

from model.checkpoint import load_checkpoint
from model.cpu import CpuChoice, prepare_cpu_model, usable_cores
from model.prediction import BatchedEngine
from model.tokens import load_tokenizer_file
from stream.base.errors import UserError

log = logging.getLogger("model.engine")

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
        threads = max(1, min(torch.get_num_threads(), usable_cores()))
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads


class Engine(BatchedEngine):
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
        # torch's dynamic int8 quantises each activation with one scale per batch tensor: one text per batch
        self.micro_batch = 1 if self.cpu_path == "int8" else self.batch_size
        self.exact_lengths = True  # micro-batches of one length: no padding (batch invariance)
        self.entity_head = getattr(self.model, "entity_head", None) is not None
        self.offsets_tokenizer = (load_tokenizer_file(checkpoint_dir, self.max_length)
                                  if self.entity_head and checkpoint_dir else None)
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
            "entity_head": self.entity_head,
        }

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
    @torch.inference_mode()
    def _forward(self, ids: np.ndarray, entity_mask: np.ndarray | None) -> list[np.ndarray]:
        batch = torch.from_numpy(ids)
        if self._pin:
            batch = batch.pin_memory().to(self._device, non_blocking=True)
        args = [batch, batch.ne(self.pad_id)]
        if self.entity_head:
            args.append(torch.from_numpy(entity_mask).to(self._device))
        return [out.float().cpu().numpy() for out in self.model(*args)]


def load_torch_engine(
    path,
    dev: torch.device,
    *,
    dtype: str | torch.dtype | None = None,
    choice: CpuChoice | None = None,
    batch_size: int | None = None,
    threads: int | None = None,
    warmup: bool = True,
) -> Engine:
    """Load a checkpoint on ``dev`` with torch; on CPU ``choice`` (a torch path of :mod:`model.cpu`) decides
    the precision, elsewhere ``dtype`` (auto: fp16 on CUDA).  Called by :func:`model.engine.load_engine`."""
    if dev.type == "cpu":
        configure_cpu_threads(threads)
        dt = choice.dtype if choice else torch.float32
    else:
        dt = select_dtype(dev, dtype)
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
    return engine
