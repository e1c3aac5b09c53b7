"""The CPU inference path, chosen at load time from the processor's features.

Paths (ranking measured with ``bench/model_bench.py --cpu-paths [--simulate-avx2]``, accuracy with
``finsent evaluate --cpu-path P`` on the validation split; see ``model/README.md``, "CPU paths"):

* ``onnx-int8`` - ONNX Runtime (:mod:`model.ort`) on the fused BERT graph, int8 dynamic quantisation
  (weights per output channel, 7-bit; activations per row, so batch-invariant; heads and embeddings fp32).  MLAS uses
  AMX / VNNI where present, AVX2 otherwise.  The default on x86 with AVX2 (``ONNX_INT8_AUTO``).
* ``onnx``  - ONNX Runtime, fused graph, fp32: same answers as torch fp32 (any CPU).
* ``bf16``  - torch, bf16 weights and activations; only on CPUs with native bf16
  (AVX-512 BF16 or AMX), where oneDNN runs bf16 matmuls natively.
* ``int8``  - torch dynamic int8 quantisation of every ``nn.Linear`` (fbgemm); over the accuracy
  limit (``INT8_AUTO``), forced only.
* ``fp32``  - torch fp32 eager; any CPU.

Without onnxruntime (or for a non-BERT checkpoint such as the MPNet teacher) the torch paths are
chosen, as before.  The ONNX paths import neither torch nor transformers: ``finsent classify``
starts in about a second there.

Selection is pure (:func:`select_cpu_path`: features in, path and reason out)
so it is unit-tested with faked features.  ``FINSENT_CPU_PATH`` (or
``load_engine(cpu_path=...)`` / ``--cpu-path``) forces a path, e.g. to
benchmark the AVX2 choice on a machine that has more.
"""

from __future__ import annotations

import os
import platform
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported only by the torch paths (it costs seconds at start-up)
    import torch

CPU_PATHS = ("bf16", "int8", "fp32", "onnx", "onnx-int8")
ONNX_PATHS = {"onnx": "fp32", "onnx-int8": "int8"}  # path -> model.ort variant
ENV_VAR = "FINSENT_CPU_PATH"
ENV_FEATURES = "FINSENT_CPU_FEATURES"  # comma list: pretend the CPU has only these (benchmarks, tests)

# int8 is chosen automatically only once its accuracy cost on the validation split is under 0.5 points:
# per-tensor weight scales measured -1.8 points (PhraseBank) and -0.8 (topic) against fp32; per-channel
# -1.0 (PhraseBank), -0.7 (TFNS), -0.35 (topic).  See model/README.md, "CPU paths".
INT8_AUTO = False
INT8_NOTE = "int8 measured over the 0.5-point accuracy limit; FINSENT_CPU_PATH=int8 forces it"

# Measured side by side on one machine (model/README.md, "CPU paths"): ONNX Runtime fp32 with the fused
# graph against torch bf16 / fp32 / int8, and the accuracy of ONNX int8 on the validation split.
# CPUs with native bf16 too get ONNX int8: level with torch bf16 on a quieter machine (paired rounds, AMX Xeon:
# 25-33x vs 25-37x the naive baseline), 3-6x bf16 with the cores oversubscribed, same accuracy cost, and a
# start-up of 0.5 s instead of 10 s (no torch import).
BF16_OVER_ONNX = False
# ONNX int8 (per-channel 7-bit weights, per-row activation scales, heads and embeddings fp32) is chosen by
# itself.  Per-row scales (recipe 4, issue 27) made it batch-invariant and moved the distilled checkpoint from
# PhraseBank -1.03 / topic -0.35 / TFNS 0 to -0.52 / -0.06 / +0.31 points against fp32, on this CPU and on a
# simulated AVX2-only one alike (model/README.md, "CPU paths").
ONNX_INT8_AUTO = True
ONNX_NOTE = "measured faster than torch fp32; same fp32 answers"
ONNX_INT8_NOTE = ("per-row activation scales, batch-invariant; shipped checkpoint measured against fp32 on the "
                  "validation split: tweets and topics within 0.35 points, PhraseBank 0.5 under; --cpu-path onnx for fp32")

BF16_FLAGS = ("amx_bf16", "avx512_bf16")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@dataclass(frozen=True)
class CpuChoice:
    path: str  # one of CPU_PATHS
    reason: str  # why, in words (printed at load)

    @property
    def runtime(self) -> str:
        """``onnxruntime`` (:mod:`model.ort`) or ``torch`` (:mod:`model.torch_engine`)."""
        return "onnxruntime" if self.path in ONNX_PATHS else "torch"

    @property
    def dtype(self) -> torch.dtype:
        import torch  # here: torch, 2-6 s of start-up, only on the torch paths

        return torch.bfloat16 if self.path == "bf16" else torch.float32


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity), at least one."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def cpu_features(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo`` on Linux; ``FINSENT_CPU_FEATURES`` overrides)."""
    forced = os.environ.get(ENV_FEATURES)
    if forced is not None:
        return frozenset(f.strip().lower() for f in forced.split(",") if f.strip())
    flags = _cpuinfo_field(_cpuinfo() if cpuinfo is None else cpuinfo, "flags")
    if flags is not None:
        return frozenset(flags.split())
    # not Linux (or no flags line): what torch's kernel dispatch found
    import torch

    cap = torch.backends.cpu.get_cpu_capability().lower()  # "avx2", "avx512", "default", ...
    out = {cap}
    if cap.startswith("avx512"):
        out.add("avx2")
    return frozenset(out)


def _cpuinfo() -> str:
    """``/proc/cpuinfo`` ("" where there is none)."""
    try:
        return Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


def _cpuinfo_field(cpuinfo: str, key: str) -> str | None:
    """The value of the first ``key : value`` line of ``cpuinfo`` (None if there is none)."""
    for line in cpuinfo.splitlines():
        if line.startswith(key) and ":" in line:
            return line.split(":", 1)[1].strip()
    return None


def describe_cpu(cpuinfo: str | None = None) -> str:
    """The machine's CPU in one line, for benchmark output: model name, CPU count and which of the features
    that decide the CPU speed it has (the real ones: ``FINSENT_CPU_FEATURES`` is ignored here)."""
    cpuinfo = _cpuinfo() if cpuinfo is None else cpuinfo
    name = _cpuinfo_field(cpuinfo, "model name")
    flags = set((_cpuinfo_field(cpuinfo, "flags") or "").split())
    have = [f for f in ("avx2", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in flags]
    return (f"{name or platform.processor() or '?'}, {os.cpu_count()} CPUs, "
            f"{' '.join(have) if have else 'no avx2'}{'' if 'avx512_bf16' in flags else ' (no avx512_bf16)'}")


def _has(features: Iterable[str], names: Iterable[str]) -> str | None:
    fs = set(features)
    return next((n for n in names if n in fs), None)


def _onnx_available() -> bool:
    from model.ort import available  # here: model.ort is only consulted when choosing a path

    return available()


def select_cpu_path(features: Iterable[str], forced: str | None = None, *,
                    machine: str | None = None, onnx: bool | None = None) -> CpuChoice:
    """The fastest measured path for a CPU with ``features`` (or the ``forced`` one), with the reason.

    ``onnx``: whether the ONNX Runtime path can run here (default: onnxruntime and tokenizers import)."""
    features = frozenset(features)
    if forced not in (None, "", "auto"):
        name = str(forced).lower()
        name = {"float32": "fp32", "bfloat16": "bf16", "qint8": "int8", "ort": "onnx", "onnx-fp32": "onnx",
                "ort-int8": "onnx-int8"}.get(name, name)
        if name not in CPU_PATHS:
            raise ValueError(f"unknown CPU path {forced!r}: use auto, {', '.join(CPU_PATHS)}")
        return CpuChoice(name, f"forced ({ENV_VAR} / --cpu-path {name})")
    arch = (machine or platform.machine()).lower()
    x86 = arch in ("x86_64", "amd64", "i686", "x86")
    bf16 = _has(features, BF16_FLAGS)
    vnni = _has(features, VNNI_FLAGS)
    if onnx is None:
        onnx = _onnx_available()
    if bf16 and BF16_OVER_ONNX:
        return CpuChoice("bf16", f"native bf16 ({bf16}): bf16 matmuls run natively in oneDNN")
    if onnx:
        if x86 and ONNX_INT8_AUTO and ("avx2" in features or vnni):
            kind = f"{vnni} int8 dot products" if vnni else "AVX2 int8 kernels"
            return CpuChoice("onnx-int8", f"{_cpu_words(bf16, vnni, features)}: ONNX Runtime, fused graph, int8 "
                                          f"dynamic quantisation ({kind}; {ONNX_INT8_NOTE})")
        return CpuChoice("onnx", f"{_cpu_words(bf16, vnni, features)}: ONNX Runtime fp32, fused BERT graph "
                                 f"({ONNX_NOTE})")
    if bf16:
        return CpuChoice("bf16", f"native bf16 ({bf16}): bf16 matmuls run natively in oneDNN")
    if not x86:
        # fbgemm (int8) is x86-only; on Arm torch's fp32 path is the safe measured choice
        return CpuChoice("fp32", f"{arch or 'unknown'} CPU: fp32 (int8 kernels here are x86)")
    if vnni:
        if INT8_AUTO:
            return CpuChoice("int8", f"no native bf16; {vnni}: int8 dynamic quantisation with VNNI dot products")
        return CpuChoice("fp32", f"no native bf16 ({vnni} present): fp32 ({INT8_NOTE})")
    if "avx2" in features:
        if INT8_AUTO:
            return CpuChoice("int8", "no native bf16 nor VNNI; avx2: int8 dynamic quantisation (AVX2 kernels)")
        return CpuChoice("fp32", f"no native bf16 (avx2): fp32 ({INT8_NOTE})")
    return CpuChoice("fp32", "no avx2: plain fp32")


def _cpu_words(bf16: str | None, vnni: str | None, features: frozenset[str]) -> str:
    if bf16:
        return f"{bf16}, {vnni}" if vnni else bf16
    if vnni:
        return f"no native bf16, {vnni}"
    return "no native bf16 nor VNNI, avx2" if "avx2" in features else "no avx2"


def fallback_from_onnx(choice: CpuChoice, features: Iterable[str], why: str) -> CpuChoice:
    """The torch path to use when the ONNX path ``choice`` cannot run (``why``), saying so."""
    alt = select_cpu_path(features, onnx=False)
    return CpuChoice(alt.path, f"ONNX Runtime path {choice.path} unavailable ({why}); {alt.reason}")


def prepare_cpu_model(model: torch.nn.Module, path: str) -> torch.nn.Module:
    """Turn an fp32 eval-mode model into the given torch CPU path's model."""
    import torch  # here: torch, 2-6 s of start-up, only on the torch paths

    model = model.to(device="cpu", dtype=torch.float32).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if path == "bf16":
        return model.to(torch.bfloat16)
    if path == "int8":
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic  # here: torch (see above)

        with warnings.catch_warnings():  # torch.ao's quantisation APIs warn about their future move
            warnings.simplefilter("ignore")
            # per output channel weight scales: per-tensor cost 1.8 points on the PhraseBank, per-channel 1.0
            return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    if path == "fp32":
        return model
    raise ValueError(f"unknown CPU path {path!r}")
