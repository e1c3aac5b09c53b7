"""ONNX Runtime path: export cache keyed by the checkpoint's hash, same answers as torch (tiny model and
the shipped one on real headlines), int8 close, and a serving path that imports neither torch nor transformers."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from model import ort
from model.engine import load_engine
from stream.base.errors import UserError
from tests.conftest import REPO, SHARED_DATA
from tests.support.tiny_model import make_tiny_checkpoint

TEXTS = ["Apple shares jump after earnings beat", "Fed", "Oil slumps as OPEC+ signals more supply; Brent falls 4% "
         "to $71, the lowest since December", "Tesla names new CFO", "", "Gold rises",
         "$TSLA down 5% premarket after deliveries miss estimates by a wide margin, analysts cut targets"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv(ort.ENV_CACHE, str(tmp_path_factory.getbasetemp() / "onnx-cache"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ck") / "tiny")


def test_export_cached_by_checkpoint_hash(tmp_path, monkeypatch):
    monkeypatch.setenv(ort.ENV_CACHE, str(tmp_path / "cache"))
    directory, _ = make_tiny_checkpoint(tmp_path / "ck", seed=1)
    first, took = ort.ensure_onnx(directory, "fp32")
    assert first.is_file() and took > 0 and first.parent == tmp_path / "cache"
    mtime = first.stat().st_mtime_ns
    again, took2 = ort.ensure_onnx(directory, "fp32")
    assert again == first and took2 == 0.0 and first.stat().st_mtime_ns == mtime  # not exported again
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no temp file or folder left behind
    q, took_q = ort.ensure_onnx(directory, "int8")  # quantised from the cached fp32 file, not exported again
    assert q.name.endswith("-int8.onnx") and took_q > 0 and first.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in first.parent.iterdir()) == sorted([first.name, q.name])
    make_tiny_checkpoint(directory, seed=2)  # new weights, same model_version
    changed, took3 = ort.ensure_onnx(directory, "fp32")
    assert changed != first and took3 > 0 and changed.is_file()
    assert ort.checkpoint_key(directory) in changed.name
    assert not first.exists()  # one file per model_version and variant: the stale export is gone
    assert q.exists()  # the other variant is replaced only when it is made again


def test_ort_fp32_matches_torch(tiny):
    ref = load_engine(tiny[0], "cpu", cpu_path="fp32", batch_size=3, warmup=False)
    e = load_engine(tiny[0], "cpu", cpu_path="onnx", batch_size=3, warmup=False)
    assert e.describe()["runtime"] == "onnxruntime" and e.cpu_path == "onnx" and e.dtype == "float32"
    assert e.tokenize(TEXTS) == ref.tokenize(TEXTS)  # tokenizers directly == the transformers tokenizer
    # its pool threads do not spin between operators (they would burn the cores a worker shares)
    assert e.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
    a_t, a_s = ref.predict_proba(TEXTS)
    b_t, b_s = e.predict_proba(TEXTS)
    np.testing.assert_allclose(b_t, a_t, atol=1e-5)
    np.testing.assert_allclose(b_s, a_s, atol=1e-5)
    ref_l = ref.predict_logits(TEXTS)
    np.testing.assert_allclose(e.predict_logits(TEXTS)[0], ref_l[0], atol=1e-4)
    assert [p.to_dict() for p in e.predict(TEXTS[::-1])][::-1] == [p.to_dict() for p in e.predict(TEXTS)]
    assert e.predict([]) == []
    with pytest.raises(TypeError):
        e.predict("one string")
    assert len(e.tokenize(["word " * 500])[0]) == e.max_length == 64


def test_ort_int8_close_to_fp32(tiny):
    ref = load_engine(tiny[0], "cpu", cpu_path="onnx", warmup=False)
    e = load_engine(tiny[0], "cpu", cpu_path="onnx-int8")
    assert e.dtype == "int8" and e.onnx_file.endswith("-int8.onnx")
    a_t, a_s = ref.predict_proba(TEXTS)
    b_t, b_s = e.predict_proba(TEXTS)
    np.testing.assert_allclose(b_t, a_t, atol=0.08)
    np.testing.assert_allclose(b_s, a_s, atol=0.08)
    assert not np.array_equal(a_t, b_t)  # it really ran the quantised graph


def test_int8_keeps_both_heads_in_fp32(tiny):
    """The quantiser rewrites each head's Gemm as "<name>_MatMul" + Add before quantising: recipe 2 excluded
    only the Gemm's own name, so the heads were int8 after all.  Now only encoder matmuls are integer."""
    import onnx

    path, _ = ort.ensure_onnx(tiny[0], "int8")
    nodes = onnx.load(str(path), load_external_data=False).graph.node
    integer = [n.name for n in nodes if n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul", "QAttention")]
    assert integer and not any("head" in n for n in integer)
    assert any("head" in n.name and n.op_type in ("MatMul", "Gemm") for n in nodes)


def test_mpnet_checkpoint_falls_back_to_torch(tiny, tmp_path):
    cfg = json.loads((tiny[0] / "config.json").read_text())
    assert ort.supports(tiny[0]) is None
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "encoder": {**cfg["encoder"], "model_type": "mpnet"}}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert "mpnet" in ort.supports(tmp_path)
    with pytest.raises(UserError, match="no ONNX path"):
        ort.load_ort_engine(tmp_path)


def _real_headlines(n: int) -> list[str]:
    import pandas as pd

    from stream.messages.text import model_input

    texts = []
    for f in ("sentiment/tfns_train.csv", "topic/topic_train.csv", "sentiment/fpb_train.csv"):
        df = pd.read_csv(SHARED_DATA / f, dtype={"text": str}, keep_default_na=False)
        texts += [model_input(t) for t in df["text"].sample(n // 3, random_state=5)]
    return texts


@pytest.mark.skipif(not (SHARED_DATA / "topic" / "topic_train.csv").is_file(), reason="no ../shared/data")
def test_shipped_model_same_labels_on_real_headlines(monkeypatch):
    """The shipped checkpoint through ONNX Runtime fp32 and through torch fp32: same labels, same probabilities."""
    monkeypatch.delenv(ort.ENV_CACHE)  # the user's cache: the shipped model is exported once per machine
    texts = _real_headlines(300)
    ref = load_engine(None, "cpu", cpu_path="fp32", warmup=False)
    e = load_engine(None, "cpu", cpu_path="onnx", warmup=False)
    a_t, a_s = ref.predict_proba(texts)
    b_t, b_s = e.predict_proba(texts)
    assert (a_t.argmax(1) == b_t.argmax(1)).all() and (a_s.argmax(1) == b_s.argmax(1)).all()
    assert np.abs(a_t - b_t).max() < 1e-3 and np.abs(a_s - b_s).max() < 1e-3


def test_classify_imports_neither_torch_nor_transformers(tiny, tmp_path):
    """``finsent classify`` on the ONNX path: the start-up budget (< 3 s) leaves no room for torch."""
    cache = tmp_path / "cache"
    ort.ensure_onnx(tiny[0], "fp32", cache)
    code = ("import sys; from stream.cli import main; rc = main(['classify', '-']); "
            "print(json.dumps([m for m in ('torch', 'transformers', 'pandas') if m in sys.modules]), file=sys.stderr)")
    env = {**os.environ, ort.ENV_CACHE: str(cache), "FINSENT_CPU_PATH": "onnx", "FINSENT_MODEL": str(tiny[0]),
           "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", "import json; " + code], input='{"id": 1, "text": "Oil slumps"}\n',
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout.splitlines()[0])
    assert row["id"] == 1 and row["model_version"] == "tiny-test" and row["sentiment"] in ("negative", "neutral",
                                                                                             "positive")
    assert "CPU path onnx" in out.stderr
    assert json.loads(out.stderr.strip().splitlines()[-1]) == []


def test_unwritable_cache_falls_back_to_torch(tiny, tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(ort.ENV_CACHE, str(blocker / "onnx"))
    with caplog.at_level("INFO", logger="model.engine"):
        e = load_engine(tiny[0], "cpu", cpu_path="onnx-int8", warmup=False)
    assert e.describe().get("runtime") is None and e.cpu_path in ("bf16", "fp32")  # the torch engine
    assert "ONNX cache" in e.cpu_reason and any("ONNX Runtime path onnx-int8 unavailable" in r.getMessage()
                                                for r in caplog.records)
    assert len(e.predict(TEXTS)) == len(TEXTS)


@pytest.mark.skipif(not (SHARED_DATA / "topic" / "topic_train.csv").is_file(), reason="no ../shared/data")
def test_shipped_int8_mostly_agrees_with_fp32_on_real_headlines(monkeypatch):
    """A guard on the quantisation recipe (measured: 97 % of topic and 99.3 % of sentiment labels kept on
    these 300 headlines; the validation-split accuracy of each path is in model/README.md)."""
    monkeypatch.delenv(ort.ENV_CACHE)
    texts = _real_headlines(300)
    a_t, a_s = load_engine(None, "cpu", cpu_path="onnx", warmup=False).predict_proba(texts)
    b_t, b_s = load_engine(None, "cpu", cpu_path="onnx-int8", warmup=False).predict_proba(texts)
    assert (a_t.argmax(1) == b_t.argmax(1)).mean() >= 0.95
    assert (a_s.argmax(1) == b_s.argmax(1)).mean() >= 0.97
    assert not np.array_equal(a_t, b_t)
