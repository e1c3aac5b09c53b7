"""Inference engine: checkpoint round-trip, batching order, API, device/dtype selection."""

import json
import random

import numpy as np
import pytest
import torch

import model.engine as engine_mod
import model.torch_engine as torch_engine_mod
from model.checkpoint import load_checkpoint, read_config
from model.engine import SENTIMENTS, TOPICS, Prediction, build_text, load_engine, select_device, select_dtype
from model.paths import SHIPPED_CHECKPOINT
from stream.base.errors import UserError
from tests.support.tiny_model import make_tiny_checkpoint

TEXTS = [
    "Apple shares jump after earnings beat",
    "Fed",
    "Oil slumps as OPEC+ signals more supply; Brent falls 4% to $71, the lowest since December",
    "Tesla names new CFO",
    "$TSLA down 5% premarket after deliveries miss estimates by a wide margin, analysts cut targets",
    "Gold rises",
    "JPMorgan raises dividend",
    "",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ck") / "tiny")


@pytest.fixture(scope="module")
def engine(tiny):
    return load_engine(tiny[0], "cpu", dtype="float32", batch_size=3, warmup=False)


def _reference(model, engine, texts):
    """Unbatched forward pass of the in-memory model, one text at a time."""
    tops, sents = [], []
    with torch.inference_mode():
        for t in texts:
            ids = torch.tensor([engine.tokenize([t])[0]])
            a, b = model(ids)
            tops.append(a.softmax(-1)[0].numpy())
            sents.append(b.softmax(-1)[0].numpy())
    return np.stack(tops), np.stack(sents)


def test_checkpoint_round_trip_identical_predictions(tiny, engine):
    directory, model = tiny
    cfg = read_config(directory)
    assert cfg.model_version == "tiny-test" and cfg.max_length == 64
    assert list(cfg.topics) == list(TOPICS) and list(cfg.sentiments) == list(SENTIMENTS)
    loaded, _, _, _ = load_checkpoint(directory)
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    ref_t, ref_s = _reference(model, engine, TEXTS)
    top, sent = engine.predict_proba(TEXTS)
    np.testing.assert_allclose(top, ref_t, atol=1e-5)
    np.testing.assert_allclose(sent, ref_s, atol=1e-5)
    assert [p.topic_id for p in engine.predict(TEXTS)] == list(ref_t.argmax(1))


def test_fp16_checkpoint_round_trip(tmp_path, tiny):
    directory, model = make_tiny_checkpoint(tmp_path / "half", dtype=torch.float16)
    from safetensors import safe_open

    with safe_open(str(directory / "model.safetensors"), "pt") as f:
        assert f.get_tensor("topic_head.weight").dtype == torch.float16
    e = load_engine(directory, "cpu", dtype="float32", warmup=False)
    ref_t, ref_s = _reference(model, e, TEXTS)
    top, sent = e.predict_proba(TEXTS)
    np.testing.assert_allclose(sent, ref_s, atol=2e-2)
    np.testing.assert_allclose(top, ref_t, atol=2e-2)


def test_output_order_independent_of_length_sort(engine):
    rng = random.Random(3)
    texts = [" ".join(rng.choice(["stocks", "fall", "rise", "Fed", "oil", "$AAPL", "beats"])
                      for _ in range(rng.randint(1, 40))) for _ in range(12)]
    batched_t, batched_s = engine.predict_proba(texts)  # micro-batches of 3, sorted by length
    for i, t in enumerate(texts):
        one_t, one_s = engine.predict_proba([t])
        np.testing.assert_allclose(batched_t[i], one_t[0], atol=1e-5)
        np.testing.assert_allclose(batched_s[i], one_s[0], atol=1e-5)
    rev = engine.predict(texts[::-1])
    fwd = engine.predict(texts)
    assert [p.topic_id for p in rev] == [p.topic_id for p in fwd][::-1]


def test_prediction_fields(engine):
    preds = engine.predict(TEXTS)
    assert len(preds) == len(TEXTS)
    for p in preds:
        assert isinstance(p, Prediction)
        assert TOPICS[p.topic_id] == p.topic and 0 <= p.topic_score <= 1
        assert p.sentiment in SENTIMENTS
        probs = (p.p_negative, p.p_neutral, p.p_positive)
        assert abs(sum(probs) - 1) < 1e-5
        assert p.sentiment == SENTIMENTS[int(np.argmax(probs))]
        assert p.sentiment_score == pytest.approx(p.p_positive - p.p_negative)
        assert -1 <= p.sentiment_score <= 1
        assert set(p.to_dict()) == {"topic", "topic_id", "topic_score", "sentiment", "p_negative",
                                   "p_neutral", "p_positive", "sentiment_score"}
    with pytest.raises(AttributeError):  # dataclasses.FrozenInstanceError is one
        preds[0].topic = "x"  # frozen
    assert engine.predict([]) == []
    with pytest.raises(TypeError):
        engine.predict("one string")
    with pytest.raises(TypeError):
        engine.predict(["ok", None])


def test_long_text_truncated_to_max_length(engine):
    ids = engine.tokenize(["word " * 500])[0]
    assert len(ids) == engine.max_length == 64
    assert len(engine.predict(["word " * 500])) == 1


def test_bf16_cpu_path_close_to_fp32(tiny):
    e32 = load_engine(tiny[0], "cpu", dtype="float32", warmup=False)
    e16 = load_engine(tiny[0], "cpu", dtype="bfloat16")
    assert e16.dtype == torch.bfloat16 and e16.describe()["dtype"] == "bfloat16"
    a, _ = e32.predict_proba(TEXTS)
    b, _ = e16.predict_proba(TEXTS)
    np.testing.assert_allclose(a, b, atol=0.05)


def test_build_text():
    assert build_text("Apple beats", "Shares rise 5%.") == "Apple beats. Shares rise 5%."
    assert build_text("Apple beats:", "shares rise") == "Apple beats: shares rise"
    assert build_text("  Apple\n beats  ", None) == "Apple beats"
    assert build_text("Same", "Same") == "Same"
    assert build_text(None, "only summary") == "only summary"
    assert build_text("", "") == ""


# -- device and dtype selection (CUDA faked on CPU) -----------------------------
def test_device_selection_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto").type == "cpu"
    assert select_device(None).type == "cpu"
    assert select_device("cpu").type == "cpu"
    with pytest.raises(UserError, match="no CUDA"):
        select_device("cuda")
    with pytest.raises(UserError):
        select_device("tpu")


def test_device_selection_with_fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto").type == "cuda"
    assert select_device("cuda").type == "cuda"
    assert select_device("cpu").type == "cpu"  # explicit CPU wins
    cuda = torch.device("cuda")
    assert select_dtype(cuda) == torch.float16
    assert select_dtype(cuda, "bfloat16") == torch.bfloat16


def test_cpu_dtype_follows_native_bf16(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch_engine_mod, "cpu_supports_bf16", lambda: True)
    assert select_dtype(cpu) == torch.bfloat16
    monkeypatch.setattr(torch_engine_mod, "cpu_supports_bf16", lambda: False)
    assert select_dtype(cpu) == torch.float32
    assert select_dtype(cpu, "float32") == torch.float32
    with pytest.raises(UserError):
        select_dtype(cpu, "float16")
    with pytest.raises(UserError):
        select_dtype(cpu, "int4")


class _FakeModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.moved_to = None

    def to(self, *args, **kwargs):  # record instead of moving to a GPU we do not have
        self.moved_to = kwargs
        return self


def test_load_engine_picks_resident_fp16_cuda_path(monkeypatch, tiny):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    fake = _FakeModel()
    monkeypatch.setattr(torch_engine_mod, "load_checkpoint",
                        lambda path: (fake, load_checkpoint(tiny[0])[1], read_config(tiny[0]), tiny[0]))
    e = load_engine(tiny[0], "auto", warmup=False)
    assert e.device == "cuda" and e.dtype == torch.float16
    assert fake.moved_to == {"device": torch.device("cuda"), "dtype": torch.float16}
    assert e._pin is True  # inputs go through pinned memory
    assert e.batch_size == engine_mod.CUDA_BATCH
    assert e.model_version == "tiny-test"


def test_missing_checkpoint_is_user_error(tmp_path):
    with pytest.raises(UserError, match="no finsent checkpoint"):
        load_engine(tmp_path, "cpu")
    (tmp_path / "config.json").write_text(json.dumps({"format": "other"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(UserError, match="not a finsent checkpoint"):
        load_engine(tmp_path, "cpu")


@pytest.mark.skipif(not (SHIPPED_CHECKPOINT / "config.json").is_file(), reason="no shipped checkpoint")
def test_shipped_checkpoint_is_small_fp16_and_sane():
    assert (SHIPPED_CHECKPOINT / "model.safetensors").stat().st_size < 60 * 2**20
    cfg = read_config(None)
    assert cfg.dtype == "float16" and cfg.model_version
    e = load_engine(None, "cpu")
    preds = e.predict([
        "Stocks plunge as recession fears mount",
        "Company X shares soar after record profit and raised guidance",
        "Fed's Powell says the central bank will keep rates unchanged",
    ])
    assert preds[0].sentiment == "negative" and preds[1].sentiment == "positive"
    assert preds[2].topic == "Fed, Central Banks"
