"""A simulated AVX2-only CPU for the benchmarks (call :func:`simulate` before torch or onnxruntime load).

Best: ``bench/avx2_only.c``, LD_PRELOADed (the script re-executes itself with it), hides every CPUID
feature newer than AVX2 + FMA from ONNX Runtime's MLAS, oneDNN, fbgemm, ATen, MKL and numpy alike (needs
gcc and the CPU's "cpuid_fault" flag); child processes inherit it with the environment.  Also, and as the
fallback: torch (ATen), oneDNN and MKL capped by their environment variables (MLAS and fbgemm have none:
without the shim they still use this CPU's AVX-512/VNNI), and finsent's path selection sees only AVX2-era
flags.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SHIM_ENV = "FINSENT_AVX2_SHIM"  # set on the re-executed process: the shim is loaded
CAPS = dict(ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2", MKL_ENABLE_INSTRUCTIONS="AVX2",
            FINSENT_CPU_FEATURES="sse4_2,avx,avx2,fma,f16c")


def shim_loaded() -> str:
    """The path of the loaded shim, or "" when this process runs without it."""
    return os.environ.get(SHIM_ENV, "")


def simulate(use_shim: bool = True) -> None:
    """Cap the libraries at AVX2 through the environment and, where possible (``use_shim``), re-execute
    this script with the CPUID shim preloaded (this call then does not return)."""
    os.environ.update(CAPS)
    if shim_loaded() or not use_shim:
        return
    import shutil
    import subprocess
    import tempfile

    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    if shutil.which("gcc") and " cpuid_fault" in flags:
        lib = Path(tempfile.mkdtemp(prefix="finsent-avx2-")) / "avx2_only.so"
        subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(lib),
                        str(Path(__file__).with_name("avx2_only.c"))], check=True)
        env = {**os.environ, "LD_PRELOAD": f"{lib} {os.environ.get('LD_PRELOAD', '')}".strip(), SHIM_ENV: str(lib)}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
