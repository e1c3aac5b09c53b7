"""Start-up time of ``finsent --help`` and ``finsent classify``: median of N runs, and whether pydantic was imported.

    python bench/startup.py [--runs 15] [--repo DIR]

``--repo`` runs the commands from another checkout (e.g. main) with this interpreter, so a before/after
comparison uses the same Python and the same machine.  Each run is a fresh process; the wall time is
measured around ``subprocess.run``.  ``classify`` scores one headline read from stdin (model load included).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

LINE = json.dumps({"id": "s1", "text": "Apple shares fall after weak iPhone sales"}) + "\n"
CASES = {
    "finsent --help": (["--help"], None),
    "finsent classify --help": (["classify", "--help"], None),
    "finsent classify (1 line)": (["classify"], LINE),
}
PROBE = ("import runpy, sys; sys.argv = ['finsent'] + sys.argv[1:]\n"
         "try:\n    runpy.run_module('stream.cli', run_name='__main__')\n"
         "except SystemExit:\n    pass\n"
         "print('PYDANTIC' if 'pydantic' in sys.modules else 'NO-PYDANTIC', file=sys.stderr)")


def run_once(repo: Path, args: list[str], stdin: str | None) -> float:
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "stream.cli", *args], cwd=repo, input=stdin, text=True,
                         capture_output=True)
    elapsed = time.perf_counter() - t0
    if res.returncode not in (0,):
        raise SystemExit(f"{args}: exit {res.returncode}: {res.stderr[-2000:]}")
    return elapsed


def imports_pydantic(repo: Path, args: list[str], stdin: str | None) -> bool:
    res = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=repo, input=stdin, text=True, capture_output=True)
    return "NO-PYDANTIC" not in res.stderr.splitlines()[-1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    args = ap.parse_args()
    out = {}
    for name, (argv, stdin) in CASES.items():
        run_once(args.repo, argv, stdin)  # warm the page cache
        times = [run_once(args.repo, argv, stdin) for _ in range(args.runs)]
        out[name] = {"median_ms": round(1000 * statistics.median(times), 1),
                     "min_ms": round(1000 * min(times), 1), "max_ms": round(1000 * max(times), 1),
                     "runs": args.runs, "imports_pydantic": imports_pydantic(args.repo, argv, stdin)}
        print(f"{name:28} median {out[name]['median_ms']:7.1f} ms  (min {out[name]['min_ms']:.1f}, "
              f"max {out[name]['max_ms']:.1f}, {args.runs} runs)  pydantic imported: {out[name]['imports_pydantic']}")
    print(json.dumps({"repo": str(args.repo.resolve()), "python": sys.executable, "results": out}))


if __name__ == "__main__":
    main()
