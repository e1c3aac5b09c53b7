"""Score the entity linker on the hand-labelled development sets.

    .venv/bin/python bench/linking_eval.py [--set current|history|both] [--split tune|held|all] [--errors]
                                           [--data ../shared/data]

* ``current``: ``bench/linking_dev_labels.tsv`` (labels keyed by file + row, no text) joined with the
  texts under ``../shared/data`` (tweets and news sentences of today's names);
* ``history``: ``bench/linking_dev_old.tsv``, 2009-2020 headlines with their dates, each read as of its
  date (point-in-time names and symbols).

For each set it prints micro precision / recall of the linked tickers, overall and per source, the same
on the texts without a cashtag (names, tags and lists only), and the share of company-free texts that
get no ticker.  Labels and predictions are compared after folding share classes to one canonical
ticker (``symbols.tsv``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stream.linking import default_linker

LABELS = ROOT / "bench" / "linking_dev_labels.tsv"
HISTORY = ROOT / "bench" / "linking_dev_old.tsv"
_CASHTAG = re.compile(r"(?<![\w$])\$[A-Za-z]{1,6}")


Row = tuple[str, str, str, set[str], str | None]  # key, source, text, gold tickers, date


def load(data: Path, split: str) -> list[Row]:
    """The first development set: labels keyed by file and row of ../shared/data."""
    rows: list[Row] = []
    cache: dict[str, list[str]] = {}
    for line in LABELS.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or line.startswith("split\t") or not line.strip():
            continue
        sp, fname, row, sha, tickers = line.split("\t")
        if split != "all" and sp != split:
            continue
        if fname not in cache:
            with open(data / fname, newline="", encoding="utf-8") as f:
                cache[fname] = [r[0] for r in list(csv.reader(f))[1:]]
        text = cache[fname][int(row)]
        if hashlib.sha1(text.encode()).hexdigest()[:10] != sha:
            raise SystemExit(f"{fname} row {row}: text changed (hash mismatch)")
        rows.append((f"{fname}:{row}", fname.split("/")[-1].split("_")[0], text,
                     set() if tickers == "-" else set(tickers.split()), None))
    return rows


def load_history(split: str) -> list[Row]:
    """The second development set: 2009-2020 headlines with their dates (text in the file)."""
    rows: list[Row] = []
    for n, line in enumerate(HISTORY.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("#") or line.startswith("split\t") or not line.strip():
            continue
        sp, day, source, tickers, text = line.split("\t")
        if split == "all" or sp == split:
            rows.append((f"{HISTORY.name}:{n}", source, text, set() if tickers == "-" else set(tickers.split()), day))
    return rows


def score(rows: list[Row], linker, show_errors: bool) -> dict:
    tp = fp = fn = 0
    ntp = nfp = nfn = 0
    free = free_clean = 0
    for key, _, text, gold, day in rows:
        gold = {linker.canonical(t, day) or t for t in gold}
        pred = set(linker.extract(text, day))
        t, p, n = len(gold & pred), len(pred - gold), len(gold - pred)
        tp, fp, fn = tp + t, fp + p, fn + n
        if not _CASHTAG.search(text):
            ntp, nfp, nfn = ntp + t, nfp + p, nfn + n
        if not gold:
            free += 1
            free_clean += not pred
        if show_errors and (p or n):
            links = [(lk.ticker or lk.entity, lk.text, lk.rule) for lk in linker.link(text, day, unlisted=True)]
            print(f"{key}\n  {text[:200]!r}\n  gold={sorted(gold)} extra={sorted(pred - gold)} "
                  f"missed={sorted(gold - pred)} links={links}")

    def prf(a, b, c):
        return (a / (a + b) if a + b else 1.0, a / (a + c) if a + c else 1.0)

    p_all, r_all = prf(tp, fp, fn)
    p_nc, r_nc = prf(ntp, nfp, nfn)
    return {"texts": len(rows), "precision": p_all, "recall": r_all, "tp": tp, "fp": fp, "fn": fn,
            "precision_no_cashtag": p_nc, "recall_no_cashtag": r_nc, "tp_nc": ntp, "fp_nc": nfp, "fn_nc": nfn,
            "company_free": free, "company_free_clean": free_clean / free if free else 1.0}


def report(name: str, rows: list[Row], linker, show_errors: bool) -> None:
    s = score(rows, linker, show_errors)
    print(f"{name}: texts={s['texts']}")
    print(f"  all texts:        precision {s['precision']:.3f}  recall {s['recall']:.3f}  "
          f"(tp {s['tp']}, fp {s['fp']}, fn {s['fn']})")
    print(f"  without cashtags: precision {s['precision_no_cashtag']:.3f}  recall {s['recall_no_cashtag']:.3f}  "
          f"(tp {s['tp_nc']}, fp {s['fp_nc']}, fn {s['fn_nc']})")
    print(f"  company-free texts with no ticker: {s['company_free_clean']:.3f} of {s['company_free']}")
    for source in sorted({r[1] for r in rows}):
        p = score([r for r in rows if r[1] == source], linker, False)
        print(f"  {source:<10} texts {p['texts']:>4}  precision {p['precision']:.3f}  recall {p['recall']:.3f}  "
              f"(tp {p['tp']}, fp {p['fp']}, fn {p['fn']}); company-free clean {p['company_free_clean']:.3f} "
              f"of {p['company_free']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default="both", choices=("current", "history", "both"))
    ap.add_argument("--split", default="all", choices=("tune", "held", "all"))
    ap.add_argument("--errors", action="store_true", help="print every text with a wrong or missed ticker")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    linker = default_linker()
    if args.set in ("current", "both"):
        report(f"current (split={args.split})", load(args.data, args.split), linker, args.errors)
    if args.set in ("history", "both"):
        report(f"history 2009-2020 (split={args.split})", load_history(args.split), linker, args.errors)
    return 0


if __name__ == "__main__":
    sys.exit(main())
