#!/usr/bin/env python
"""Per-company sentiment, judged through ``finsent classify``'s contract (issue 22).

Each labelled text goes through :func:`model.classify.classify_lines` (what ``finsent classify`` runs) with
``targets`` = its labelled names; each answer's ``name`` is matched case-insensitively to its target.
Reported per set:

* per-company accuracy and macro-F1;
* accuracy on the companies of texts whose companies have different labels;
* Pearson r of the per-company ``sentiment_score`` against the human label (-1 / 0 / +1);
* sign right where one text's companies have opposite (positive vs negative) labels: both signs right;
* the same figures for the headline's sentiment given to every company (what the product did before).

Sets: ``--weak-val`` (the TFNS / FPB validation texts that name one company, with the headline's label),
``--sentfin-val`` (SEntFiN's held-out part, the split ``finsent train-entities`` holds out: seed 13,
15 %), any ``--file FILE.jsonl`` (``{"text", "entities": {name: label}}``, e.g. ``bench/entity_dev_us.jsonl``;
``--halves``: its even lines, which were read for error analysis while developing the training data, and
its odd lines, held out, reported apart).

Usage::

    python bench/entity_eval.py [--model DIR] [--cpu-path P] [--sentfin-val] [--file F ...] [--json OUT]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np

from model.classify import classify_lines
from model.cpu import describe_cpu
from model.data import default_data_dir
from model.engine import load_engine
from model.entity_data import SENTFIN_FILE, EntityText, read_entity_jsonl, split_by_text
from model.metrics import classification_report
from stream.base.labels import SENTIMENTS

VALUE = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}


def score_set(engine, rows: list[EntityText]) -> dict:
    lines = [json.dumps({"id": i, "text": r.text, "targets": [e.name for e in r.entities]})
             for i, r in enumerate(rows)]
    out = io.StringIO()
    classify_lines(engine, lines, out)
    answers = [json.loads(x) for x in out.getvalue().splitlines()]
    gold, pred, score, head, head_score, disagree, opposite = [], [], [], [], [], [], []
    pairs_ok = pairs = 0
    for r, a in zip(rows, answers):
        by_name = {e["name"].lower(): e for e in a["entities"]}
        labels = {e.label for e in r.entities}
        opp = {SENTIMENTS.index("positive"), SENTIMENTS.index("negative")} <= labels
        signs = []
        for ent in r.entities:
            got = by_name[ent.name.lower()]
            gold.append(ent.label)
            pred.append(SENTIMENTS.index(got["sentiment"]))
            score.append(got["sentiment_score"])
            head.append(SENTIMENTS.index(a["sentiment"]))
            head_score.append(a["sentiment_score"])
            disagree.append(len(labels) > 1)
            opposite.append(opp)
            if opp and ent.label != SENTIMENTS.index("neutral"):
                signs.append((got["sentiment_score"] > 0) == (ent.label == SENTIMENTS.index("positive")))
        if opp:
            pairs += 1
            pairs_ok += all(signs)
    gold_a, dis = np.array(gold), np.array(disagree)
    human = np.array([VALUE[SENTIMENTS[g]] for g in gold])

    def figures(p: list[int], s: list[float]) -> dict:
        pa = np.array(p)
        rep = classification_report(gold_a, pa, SENTIMENTS)
        return {"accuracy": round(rep["accuracy"], 4), "macro_f1": round(rep["macro_f1"], 4),
                "disagree_accuracy": round(float((pa[dis] == gold_a[dis]).mean()), 4) if dis.any() else None,
                "pearson": round(float(np.corrcoef(np.array(s), human)[0, 1]), 4)}

    return {"texts": len(rows), "companies": len(gold), "disagree_companies": int(dis.sum()),
            "opposite_texts": pairs, "per_company": {**figures(pred, score), "opposite_sign_right": pairs_ok},
            "headline_for_all": figures(head, head_score)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="checkpoint (default: the shipped one)")
    ap.add_argument("--cpu-path", default=None, help="CPU path (default: auto)")
    ap.add_argument("--sentfin-val", action="store_true", help="SEntFiN's held-out part (seed 13, 15 %%)")
    ap.add_argument("--weak-val", action="store_true",
                    help="the TFNS and FPB validation splits' texts naming one company, the headline's label given "
                         "to it (the weak labels' source, held out)")
    ap.add_argument("--file", action="append", default=[], help="a labelled JSONL set (repeatable)")
    ap.add_argument("--halves", action="store_true",
                    help="also report each --file's even lines (the half looked at while developing) and odd "
                         "lines (held out) apart")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)

    engine = load_engine(args.model, "cpu", cpu_path=args.cpu_path, warmup=False)
    sets: dict[str, list[EntityText]] = {}
    if args.sentfin_val:
        sets["sentfin_val"] = split_by_text(read_entity_jsonl(default_data_dir() / SENTFIN_FILE), 0.15, 13)[1]
    if args.weak_val:
        from model.data import load_splits
        from model.entity_data import weak_labels
        from stream.linking import default_linker

        for split in load_splits(default_data_dir(), 0.1, 13, ["tfns", "fpb"]):
            sets[f"weak_{split.key}_val"] = weak_labels(split.val_inputs, split.val_label, split.key, default_linker())
    for f in args.file:
        rows = read_entity_jsonl(Path(f))
        sets[Path(f).stem] = rows
        if args.halves:
            sets[Path(f).stem + ":tune"] = rows[0::2]
            sets[Path(f).stem + ":held"] = rows[1::2]
    print(f"# CPU: {describe_cpu()}; model {engine.model_version} ({engine.describe().get('cpu_path')}), "
          f"entity head: {engine.entity_head}")
    results = {}
    for name, rows in sets.items():
        r = score_set(engine, rows)
        results[name] = r
        pc, hd = r["per_company"], r["headline_for_all"]
        print(f"{name}: {r['texts']} texts, {r['companies']} companies ({r['disagree_companies']} in texts whose "
              f"companies disagree; {r['opposite_texts']} texts with opposite companies)")
        print(f"  per-company : acc {pc['accuracy']:.4f}  macro-F1 {pc['macro_f1']:.4f}  disagree acc "
              f"{pc['disagree_accuracy']}  Pearson {pc['pearson']:.4f}  opposite signs right "
              f"{pc['opposite_sign_right']}/{r['opposite_texts']}")
        print(f"  headline    : acc {hd['accuracy']:.4f}  macro-F1 {hd['macro_f1']:.4f}  disagree acc "
              f"{hd['disagree_accuracy']}  Pearson {hd['pearson']:.4f}")
    if args.json:
        args.json.write_text(json.dumps({"cpu": describe_cpu(), "model": engine.model_version, "sets": results},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
