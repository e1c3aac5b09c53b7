"""The CPU inference path, chosen at load time from the processor's features.

Paths (fastest first where the CPU allows them; ranking measured with
``bench/model_bench.py --cpu-paths``, see ``model/README.md``):

* ``bf16``  - bf16 weights and activations; only on CPUs with native bf16
  (AVX-512 BF16 or AMX), where oneDNN runs bf16 matmuls natively.
* ``int8``  - dynamic int8 quantisation of every ``nn.Linear`` (weights int8
  per output channel, activations quantised per batch; ``torch.ao`` ``quantize_dynamic``).
  Uses VNNI instructions where present (AVX-512 VNNI / AVX-VNNI), AVX2 otherwise.
  Chosen automatically on x86 CPUs without native bf16 only while ``INT8_AUTO``
  (its measured accuracy cost is within 0.5 points); otherwise forced only.
* ``fp32``  - plain fp32 eager; any CPU.

Selection is pure (:func:`select_cpu_path`: features in, path and reason out)
so it is unit-tested with faked features.  ``FINSENT_CPU_PATH`` (or
``load_engine(cpu_path=...)`` / ``--cpu-path``) forces a path, e.g. to
benchmark the AVX2 choice on a machine that has more.
"""

from __future__ import annotations

import os
import platform
import warnings
from dataclasses import dataclass
from typing import Iterable

import torch

CPU_PATHS = ("bf16", "int8", "fp32")
ENV_VAR = "FINSENT_CPU_PATH"
ENV_FEATURES = "FINSENT_CPU_FEATURES"  # comma list: pretend the CPU has only these (benchmarks, tests)

# int8 is chosen automatically only once its accuracy cost on the validation split is under 0.5 points:
# per-tensor weight scales measured -1.8 points (PhraseBank) and -0.8 (topic) against fp32; per-channel
# -1.0 (PhraseBank), -0.7 (TFNS), -0.35 (topic).  See model/README.md, "CPU paths".
INT8_AUTO = False
INT8_NOTE = "int8 measured over the 0.5-point accuracy limit; FINSENT_CPU_PATH=int8 forces it"

BF16_FLAGS = ("amx_bf16", "avx512_bf16")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@dataclass(frozen=True)
class CpuChoice:
    path: str  # one of CPU_PATHS
    reason: str  # why, in words (printed at load)

    @property
    def dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.path == "bf16" else torch.float32


def cpu_features(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo`` on Linux; ``FINSENT_CPU_FEATURES`` overrides)."""
    forced = os.environ.get(ENV_FEATURES)
    if forced is not None:
        return frozenset(f.strip().lower() for f in forced.split(",") if f.strip())
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            cpuinfo = ""
    for line in cpuinfo.splitlines():
        if line.startswith("flags") and ":" in line:
            return frozenset(line.split(":", 1)[1].split())
    # not Linux (or no flags line): what torch's kernel dispatch found
    cap = torch.backends.cpu.get_cpu_capability().lower()  # "avx2", "avx512", "default", ...
    out = {cap}
    if cap.startswith("avx512"):
        out.add("avx2")
    return frozenset(out)


def _has(features: Iterable[str], names: Iterable[str]) -> str | None:
    fs = set(features)
    return next((n for n in names if n in fs), None)


def select_cpu_path(features: Iterable[str], forced: str | None = None, *,
                    machine: str | None = None) -> CpuChoice:
    """The fastest path for a CPU with ``features`` (or the ``forced`` one), with the reason."""
    features = frozenset(features)
    if forced not in (None, "", "auto"):
        name = str(forced).lower()
        name = {"float32": "fp32", "bfloat16": "bf16", "qint8": "int8"}.get(name, name)
        if name not in CPU_PATHS:
            raise ValueError(f"unknown CPU path {forced!r}: use auto, {', '.join(CPU_PATHS)}")
        return CpuChoice(name, f"forced ({ENV_VAR} / --cpu-path {name})")
    bf16 = _has(features, BF16_FLAGS)
    if bf16:
        return CpuChoice("bf16", f"native bf16 ({bf16}): bf16 matmuls run natively in oneDNN")
    arch = (machine or platform.machine()).lower()
    if arch not in ("x86_64", "amd64", "i686", "x86"):
        # fbgemm (int8) is x86-only; on Arm torch's fp32 path is the safe measured choice
        return CpuChoice("fp32", f"{arch or 'unknown'} CPU: fp32 (int8 kernels here are x86)")
    vnni = _has(features, VNNI_FLAGS)
    if vnni:
        if INT8_AUTO:
            return CpuChoice("int8", f"no native bf16; {vnni}: int8 dynamic quantisation with VNNI dot products")
        return CpuChoice("fp32", f"no native bf16 ({vnni} present): fp32 ({INT8_NOTE})")
    if "avx2" in features:
        if INT8_AUTO:
            return CpuChoice("int8", "no native bf16 nor VNNI; avx2: int8 dynamic quantisation (AVX2 kernels)")
        return CpuChoice("fp32", f"no native bf16 (avx2): fp32 ({INT8_NOTE})")
    return CpuChoice("fp32", "no avx2: plain fp32")


def prepare_cpu_model(model: torch.nn.Module, path: str) -> torch.nn.Module:
    """Turn an fp32 eval-mode model into the given CPU path's model."""
    model = model.to(device="cpu", dtype=torch.float32).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if path == "bf16":
        return model.to(torch.bfloat16)
    if path == "int8":
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        with warnings.catch_warnings():  # torch.ao's quantisation APIs warn about their future move
            warnings.simplefilter("ignore")
            # per output channel weight scales: per-tensor cost 1.8 points on the PhraseBank, per-channel 1.0
            return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    if path == "fp32":
        return model
    raise ValueError(f"unknown CPU path {path!r}")
