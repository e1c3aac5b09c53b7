"""The ONNX Runtime CPU engine: the checkpoint exported once to ONNX, run without torch.

At run time this module needs only ``onnxruntime``, ``tokenizers`` and numpy (importing torch and
transformers' BERT costs seconds; this path starts in well under a second).  The ONNX file is made
once per checkpoint, with torch, and cached outside the tree:

* **export** (:func:`export_onnx`): the checkpoint's :class:`~model.network.FinsentModel` (encoder, mean
  pooling, both heads) through ``torch.onnx.export`` with dynamic batch and sequence axes; inputs
  ``input_ids`` and ``attention_mask`` (int64), outputs ``topic_logits`` and ``sentiment_logits``;
* **fusion**: ``onnxruntime.transformers.optimizer`` for BERT fuses the embeddings + LayerNorm, each
  layer's attention core (``MultiHeadAttention``, its Q, K and V projections left as MatMuls), bias + GELU
  and residual + LayerNorm into ORT's contrib kernels;
* **int8** (variant ``int8`` only): ``onnxruntime.quantization.quantize_dynamic``, int8 weights per
  output channel with a 7-bit range (``reduce_range``) on the encoder's matmuls, then
  :func:`model.rowquant.per_row_activations`: each token's activation gets its own scale, so a text's
  outputs do not depend on its batch-mates (issue 27); the embeddings and both heads stay fp32.

The cache file is ``<cache>/onnx/<model_version>-<key>-<variant>.onnx`` where ``key`` is a sha256 over
the checkpoint's ``model.safetensors`` and ``config.json`` bytes and :data:`RECIPE`: a changed
checkpoint (or recipe) gets a new file, never a stale one.  Files are written to a temp name and
renamed (atomic), so two processes exporting at once both end with a whole file.  ``<cache>`` is
``FINSENT_ONNX_CACHE``, else ``$FINSENT_CACHE_DIR`` / ``~/.cache/finsent``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import logging
import os
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from model.cpu import usable_cores
from model.paths import read_config_json, resolve_checkpoint
from model.prediction import BatchedEngine
from model.tokens import load_tokenizer_file, token_ids
from stream.base.config import machine_settings
from stream.base.errors import UserError

log = logging.getLogger("model.engine")

VARIANTS = ("fp32", "int8")
# Bump when the export, fusion or quantisation recipe changes: every cached file is then re-made.
RECIPE = ("finsent-onnx/4: torchscript export opset 17, ort bert fusion opt_level 0 with MultiHeadAttention, "
          "int8 dynamic per-channel reduce_range weights, per-row symmetric activation scales (zero point 128), "
          "heads (their Gemm's MatMul too) and embeddings fp32")
ENV_CACHE = "FINSENT_ONNX_CACHE"
CPU_BATCH = 16
INPUTS = ("input_ids", "attention_mask")
OUTPUTS = ("topic_logits", "sentiment_logits")
ENTITY_INPUT, ENTITY_OUTPUT = "entity_mask", "entity_logits"  # checkpoints with an entity head


def available() -> bool:
    """True when onnxruntime and tokenizers can be imported (the path's only run-time needs)."""

    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "tokenizers"))


def cache_dir() -> Path:
    forced = os.environ.get(ENV_CACHE)
    if forced:
        return Path(forced).expanduser()

    return Path(machine_settings().cache_dir).expanduser() / "onnx"


def checkpoint_key(directory: Path) -> str:
    """sha256 of the checkpoint's weights and config and of :data:`RECIPE` (hex, 16 characters)."""
    h = hashlib.sha256(RECIPE.encode())
    for name in ("config.json", "model.safetensors"):
        h.update(name.encode())
        with open(directory / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()[:16]


def _read_config(directory: Path) -> dict:
    return read_config_json(directory)


def onnx_path(directory: Path, variant: str, cache: Path | None = None) -> Path:
    cfg = _read_config(directory)
    version = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(cfg.get("model_version", "model")))
    return (cache or cache_dir()) / f"{version}-{checkpoint_key(directory)}-{variant}.onnx"


def supports(directory: Path) -> str | None:
    """``None`` when the checkpoint can take this path, else why not (the fusion is BERT's)."""
    enc = _read_config(directory).get("encoder", {})
    if enc.get("model_type", "bert") != "bert":
        return f"{enc.get('model_type')} encoder (the ONNX path is for BERT encoders)"
    if not (Path(directory) / "tokenizer.json").is_file():
        return "checkpoint without tokenizer.json (the ONNX path tokenizes with the tokenizers library)"
    return None


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def export_onnx(directory: Path, out: Path) -> Path:
    """Export and fuse the checkpoint at ``directory`` into the fp32 ONNX file ``out`` (atomically).

    Needs torch, transformers, onnx and onnxruntime (the serving path needs only the last)."""
    import torch  # export only: running the ONNX file needs no torch (~2-6 s)
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    from model.checkpoint import load_checkpoint

    model, _, cfg, _ = load_checkpoint(directory, attn_implementation="eager")
    enc = cfg.encoder
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".finsent-onnx-", dir=out.parent))
    try:
        raw = work / "raw.onnx"
        ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]])  # a padded batch: the mask is traced
        args: tuple = (ids, ids.ne(0).long())
        inputs, outputs = list(INPUTS), list(OUTPUTS)
        axes = {**{n: {0: "batch", 1: "sequence"} for n in INPUTS}, **{n: {0: "batch"} for n in OUTPUTS}}
        if cfg.entity_head:  # batch x entities x tokens in, batch x entities x 3 out
            args += (torch.tensor([[[0.0, 1.0, 0.0, 0.0]], [[0.0, 0.0, 0.0, 0.0]]]),)
            inputs.append(ENTITY_INPUT)
            outputs.append(ENTITY_OUTPUT)
            axes.update({ENTITY_INPUT: {0: "batch", 1: "entities", 2: "sequence"},
                         ENTITY_OUTPUT: {0: "batch", 1: "entities"}})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings
            torch.onnx.export(model, args, str(raw), input_names=inputs, output_names=outputs, dynamic_axes=axes,
                              opset_version=17, dynamo=False)
        # MultiHeadAttention rather than Attention: the Q/K/V projections stay MatMuls, which the int8 variant
        # quantises per row (Attention's QAttention takes one activation scale per tensor).  Same fp32 outputs
        # (within 3e-6 in the logits on 300 real tweets) at the same speed.
        fusion = FusionOptions("bert")
        fusion.use_multi_head_attention = True
        fused = optimizer.optimize_model(str(raw), model_type="bert", num_heads=int(enc["num_attention_heads"]),
                                         hidden_size=int(enc["hidden_size"]), opt_level=0,
                                         optimization_options=fusion)
        stats = fused.get_fused_operator_statistics()
        fused.save_model_to_file(str(work / "fused.onnx"))
        _publish(work / "fused.onnx", out)
        log.info("exported %s to %s (fused: %s)", cfg.model_version, out,
                 ", ".join(f"{k} {v}" for k, v in stats.items() if v))
    finally:
        _remove(work)
    return out


def quantize_onnx(src: Path, out: Path) -> Path:
    """The int8 variant of the fp32 ONNX file ``src``, written to ``out`` (atomically): int8 weights, per-row
    activation scales (:mod:`model.rowquant`)."""
    import onnx  # export only
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from model.rowquant import per_row_activations

    work = Path(tempfile.mkdtemp(prefix=".finsent-onnx-", dir=out.parent))
    try:
        graph = onnx.load(str(src), load_external_data=False).graph
        weights = {i.name for i in graph.initializer}
        heads = [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm") and "head" in n.name]
        # matmuls of two activations (the entity head's pooling of mention tokens): not quantised
        heads += [n.name for n in graph.node if n.op_type == "MatMul" and not weights & set(n.input)]
        # the quantiser first rewrites each Gemm as MatMul + Add, the MatMul named "<gemm>_MatMul": without that
        # name here the heads were quantised too (recipe 2; no accuracy changed by keeping them fp32)
        heads += [f"{name}_MatMul" for name in heads]
        # 7-bit weights (reduce_range): no u8 x s8 overflow in AVX2's vpmaddubsw, so AVX2 and VNNI CPUs compute
        # the same integers (previous checkpoint: within 0.5 points of fp32 on every validation set; full 8-bit
        # weights PhraseBank -0.77; the distilled one loses 1.03 on PhraseBank).  See model/README.md, "CPU paths".
        quantize_dynamic(str(src), str(work / "dynamic.onnx"), per_channel=True, reduce_range=True,
                         weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                         nodes_to_exclude=heads, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        graph = onnx.load(str(work / "dynamic.onnx"))
        if not per_row_activations(graph, INPUTS[0]):
            raise RuntimeError(f"{src}: the quantiser left no activation to quantise")
        onnx.save(graph, str(work / "int8.onnx"))
        _publish(work / "int8.onnx", out)
    finally:
        _remove(work)
    return out


def _publish(src: Path, out: Path) -> None:
    tmp = _atomic_target(out)
    os.replace(src, tmp)
    os.replace(tmp, out)


def _remove(work: Path) -> None:
    for f in work.glob("*"):
        f.unlink(missing_ok=True)
    work.rmdir()


def ensure_onnx(directory: Path, variant: str = "fp32", cache: Path | None = None) -> tuple[Path, float]:
    """The cached ONNX file for this checkpoint and variant, made first if missing; ``(path, seconds spent)``.

    ``int8`` is quantised from the (cached or exported) fp32 file."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown ONNX variant {variant!r}")
    path = onnx_path(directory, variant, cache)
    if path.is_file():
        return path, 0.0
    started = time.perf_counter()
    log.info("no cached ONNX model for %s (%s): making it once, %s ...", directory, variant, path)
    if variant == "fp32":
        export_onnx(directory, path)
    else:
        src, _ = ensure_onnx(directory, "fp32", cache)
        quantize_onnx(src, path)
    _prune(path)
    return path, time.perf_counter() - started


def _prune(path: Path) -> None:
    """Keep one file per model_version and variant: older exports of the same version (other weights or
    recipe) are removed, so retraining under one name does not grow the cache."""
    version, variant = path.name.rsplit("-", 2)[0], path.name.rsplit("-", 1)[1]
    for old in path.parent.glob(f"{version}-*-{variant}"):
        if old != path and len(old.name) == len(path.name):
            old.unlink(missing_ok=True)


def _threads(threads: int | None) -> int:
    if threads:
        return int(threads)
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return usable_cores()


class OrtEngine(BatchedEngine):
    """A checkpoint's ONNX graph in an ONNX Runtime session: the :class:`model.torch_engine.Engine` API
    (``predict``, ``predict_proba``, ``predict_logits``, ``tokenize``, ``warmup``, ``describe``)."""

    device = "cpu"

    def __init__(self, onnx_file: Path, directory: Path, *, variant: str, batch_size: int | None = None,
                 threads: int | None = None, cpu_path: str | None = None, cpu_reason: str | None = None):
        import onnxruntime as ort  # export only

        cfg = _read_config(directory)
        self.model_version = str(cfg["model_version"])
        self.max_length = int(cfg.get("max_length", 128))
        self.checkpoint_dir = str(directory)
        self.onnx_file = str(onnx_file)
        self.variant = variant
        self.dtype = "int8" if variant == "int8" else "float32"
        self.cpu_path = cpu_path
        self.cpu_reason = cpu_reason
        self.batch_size = int(batch_size or CPU_BATCH)
        self.threads = _threads(threads)
        tok = load_tokenizer_file(directory, self.max_length)
        self.tokenizer = tok
        pad = tok.token_to_id("[PAD]")
        self.pad_id = int(cfg.get("encoder", {}).get("pad_token_id") or pad or 0)
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        # ORT's pool threads spin between operators by default: a worker then burns CPU that PostgreSQL,
        # Kafka and its own DB and loop threads need.  Off (6 interleaved pre-loaded drains, 2 cores): worker
        # CPU 4.8-6.5 against 6.1-7.3 s per 1,000 items, drain 251-338 against 250-300 items/s.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(onnx_file), so, providers=["CPUExecutionProvider"])
        self.entity_head = ENTITY_INPUT in {i.name for i in self.session.get_inputs()}
        self._outputs = list(OUTPUTS) + ([ENTITY_OUTPUT] if self.entity_head else [])
        self.micro_batch = self.batch_size
        self.offsets_tokenizer = tok
        self._lock = threading.Lock()
        self.last_tokenize_s = 0.0

    def describe(self) -> dict:
        return {
            "model_version": self.model_version,
            "device": "cpu",
            "dtype": self.dtype,
            "runtime": "onnxruntime",
            "batch_size": self.batch_size,
            "max_length": self.max_length,
            "threads": self.threads,
            "checkpoint": self.checkpoint_dir,
            "onnx": self.onnx_file,
            "cpu_path": self.cpu_path,
            "cpu_path_reason": self.cpu_reason,
            "entity_head": self.entity_head,
        }

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return token_ids(self.tokenizer, texts)

    def warmup(self) -> float:
        start = time.perf_counter()
        words = "shares of acme corp rose after quarterly earnings beat analyst estimates".split()
        # one small batch: ORT has no per-shape compilation to warm, only its first-run allocations
        self.predict([" ".join((words * 4)[:n]) for n in (8, 24)])
        return time.perf_counter() - start

    def _forward(self, ids: np.ndarray, entity_mask: np.ndarray | None) -> list[np.ndarray]:
        feed = {"input_ids": ids, "attention_mask": (ids != self.pad_id).astype(np.int64)}
        if self.entity_head:
            feed[ENTITY_INPUT] = entity_mask
        return self.session.run(self._outputs, feed)


def load_ort_engine(path, variant: str = "fp32", *, batch_size: int | None = None, threads: int | None = None,
                    warmup: bool = True, cpu_path: str | None = None, cpu_reason: str | None = None) -> OrtEngine:
    """The ONNX Runtime engine for the checkpoint at ``path`` (``None``: the shipped one)."""

    directory = resolve_checkpoint(path)
    why_not = supports(directory)
    if why_not:
        raise UserError(f"{directory}: no ONNX path for a {why_not}")
    onnx_file, export_s = ensure_onnx(directory, variant)
    engine = OrtEngine(onnx_file, directory, variant=variant, batch_size=batch_size, threads=threads,
                       cpu_path=cpu_path, cpu_reason=cpu_reason)
    engine.export_s = export_s
    if warmup:
        engine.warmup()
    return engine


def main(argv: list[str] | None = None) -> int:
    """``python -m model.ort [--model DIR] [--variants fp32,int8]``: export into the cache now (``make setup``),
    so the first ``finsent classify`` does not pay for it."""

    ap = argparse.ArgumentParser(prog="python -m model.ort", description=main.__doc__)
    ap.add_argument("--model", help="checkpoint directory (default: the shipped one)")
    ap.add_argument("--variants", default="fp32,int8", help="comma list of fp32, int8")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    directory = resolve_checkpoint(args.model)
    for variant in args.variants.split(","):
        path, took = ensure_onnx(directory, variant.strip())
        print(f"{path}: {f'exported in {took:.1f}s' if took else 'already cached'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
