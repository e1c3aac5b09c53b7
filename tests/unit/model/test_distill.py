"""Distillation loss: its values, its gradients, and a tiny student that learns a tiny teacher."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import model.distill as distill_mod
from model.distill import IGNORE, distill_loss, soft_kl, stocknet_texts, teacher_logits
from tests.support.interrupt import patch_calls
from tests.support.tiny_model import make_tiny_checkpoint, make_tiny_model


def _logits(n, k, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g) * 3


def test_soft_kl_zero_when_student_equals_teacher_and_positive_otherwise():
    t = _logits(8, 20, 0)
    assert torch.allclose(soft_kl(t, t, 2.0), torch.zeros(8), atol=1e-6)
    s = _logits(8, 20, 1)
    kl = soft_kl(s, t, 2.0)
    assert (kl > 0).all()
    # T^2 * KL of the softened distributions, checked against torch's own kl_div
    ref = F.kl_div(F.log_softmax(s / 2, -1), F.log_softmax(t / 2, -1), log_target=True, reduction="none").sum(-1) * 4
    assert torch.allclose(kl, ref, atol=1e-5)


def test_alpha_mixes_hard_and_soft_and_ignores_missing_labels():
    s_t, s_s, t_t, t_s = _logits(6, 20, 2), _logits(6, 3, 3), _logits(6, 20, 4), _logits(6, 3, 5)
    topic_y = torch.tensor([1, 4, IGNORE, IGNORE, IGNORE, IGNORE])
    sent_y = torch.tensor([IGNORE, IGNORE, 0, 2, IGNORE, IGNORE])  # two unlabelled rows
    soft_only, _ = distill_loss(s_t, s_s, t_t, t_s, topic_y, sent_y, temperature=2.0, alpha=0.0)
    hard_only, _ = distill_loss(s_t, s_s, t_t, t_s, topic_y, sent_y, temperature=2.0, alpha=1.0)
    mixed, _ = distill_loss(s_t, s_s, t_t, t_s, topic_y, sent_y, temperature=2.0, alpha=0.25)
    expected_hard = F.cross_entropy(s_t[:2], topic_y[:2]) + F.cross_entropy(s_s[2:4], sent_y[2:4])
    assert torch.isclose(hard_only, expected_hard, atol=1e-5)
    expected_soft = soft_kl(s_t, t_t, 2.0).mean() + soft_kl(s_s, t_s, 2.0).mean()
    assert torch.isclose(soft_only, expected_soft, atol=1e-5)
    assert torch.isclose(mixed, 0.25 * expected_hard + 0.75 * expected_soft, atol=1e-5)
    none = torch.full((6,), IGNORE)
    only_soft, parts = distill_loss(s_t, s_s, t_t, t_s, none, none, alpha=0.5)
    assert parts["hard"] == 0.0 and torch.isfinite(only_soft)
    with pytest.raises(ValueError):
        distill_loss(s_t, s_s, t_t, t_s, none, none, alpha=1.5)
    with pytest.raises(ValueError):
        distill_loss(s_t, s_s, t_t, t_s, none, none, temperature=0)


def test_tiny_student_learns_tiny_teacher():
    """A few steps on soft labels alone move a tiny student's outputs towards a different tiny teacher."""
    teacher, student = make_tiny_model(seed=1), make_tiny_model(seed=2)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 5000, (16, 12), generator=g)
    ids[:, 0] = 101
    with torch.no_grad():
        tt, ts = teacher(ids)
    none = torch.full((16,), IGNORE)
    student.train()
    opt = torch.optim.AdamW(student.parameters(), lr=3e-3)
    before = None
    for _ in range(60):
        s_t, s_s = student(ids)
        loss, parts = distill_loss(s_t, s_s, tt, ts, none, none, temperature=2.0, alpha=0.0)
        before = before if before is not None else parts["soft"]
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None for p in student.topic_head.parameters())
        opt.step()
    student.eval()
    with torch.no_grad():
        s_t, s_s = student(ids)
    after, _ = distill_loss(s_t, s_s, tt, ts, none, none, temperature=2.0, alpha=0.0)
    assert float(after) < 0.3 * before
    assert (s_t.argmax(-1) == tt.argmax(-1)).float().mean() >= 0.8


def test_teacher_logits_computed_once_then_cached(tmp_path, monkeypatch):
    ck, _ = make_tiny_checkpoint(tmp_path / "teacher")
    texts = ["Apple shares jump", "Fed holds rates", "Oil slumps"]
    t1, s1, version = teacher_logits(ck, texts, tmp_path / "cache", "cpu", 2)
    assert t1.shape == (3, 20) and s1.shape == (3, 3) and version == "tiny-test"
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    monkeypatch.setattr(distill_mod, "load_engine", lambda *a, **k: pytest.fail("teacher run again"))
    t2, s2, _ = teacher_logits(ck, texts, tmp_path / "cache", "cpu", 2)
    np.testing.assert_allclose(t1, t2, atol=2e-2)  # cached in fp16
    np.testing.assert_allclose(s1, s2, atol=2e-2)
    with pytest.raises(pytest.fail.Exception):  # other texts: not in the cache
        teacher_logits(ck, texts[:2], tmp_path / "cache", "cpu", 2)


def test_stocknet_texts_deduplicated_and_normalised(tmp_path):
    p = tmp_path / "s.jsonl.gz"
    rows = [{"text": "$ aapl up URL"}, {"text": "$ aapl up URL"}, {"text": "rt AT_USER fed &amp; rates"},
            {"nope": 1}, {"text": "  "}]
    with gzip.open(p, "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    assert stocknet_texts(p, 10) == ["$ aapl up https://t.co", "rt @user fed & rates"]
    assert stocknet_texts(p, 1) == ["$ aapl up https://t.co"]
    assert stocknet_texts(tmp_path / "missing.gz", 10) == []


def test_teacher_logits_keep_each_chunk_and_resume_after_an_interruption(tmp_path, monkeypatch):
    """Stopped after the first chunk, a second call computes only the rest and returns what an uninterrupted
    run returns; the chunks are deleted once the cache is assembled."""
    ck, _ = make_tiny_checkpoint(tmp_path / "teacher")
    texts = [f"headline number {i} about oil and rates" for i in range(7)]  # chunks of 3: 3 + 3 + 1
    straight = teacher_logits(ck, texts, tmp_path / "straight", "cpu", 2, chunk=3)

    real_load, seen = distill_mod.load_engine, []

    class Engine:  # the real tiny teacher, recording what it is asked; raises on the chunk numbered `die`
        def __init__(self, die):
            self.inner, self.die = real_load(ck, "cpu", batch_size=2), die

        def predict_logits(self, batch):
            seen.append(list(batch))
            if len(seen) == self.die:
                raise KeyboardInterrupt  # the session's end, mid-run
            return self.inner.predict_logits(batch)

    cache = tmp_path / "cache"
    monkeypatch.setattr(distill_mod, "load_engine", lambda *a, **k: Engine(die=2))
    with pytest.raises(KeyboardInterrupt):
        teacher_logits(ck, texts, cache, "cpu", 2, chunk=3)
    parts = list(cache.glob("*.part/*.npz"))
    assert [p.name for p in parts] == ["chunk-000000000-3.npz"] and not list(cache.glob("*.npz"))
    assert not list(cache.rglob("*.tmp"))

    seen.clear()
    monkeypatch.setattr(distill_mod, "load_engine", lambda *a, **k: Engine(die=0))
    resumed = teacher_logits(ck, texts, cache, "cpu", 2, chunk=3)
    assert seen == [texts[3:6], texts[6:]]  # the first chunk was not computed again
    assert resumed[2] == straight[2] == "tiny-test"
    np.testing.assert_array_equal(resumed[0], straight[0])
    np.testing.assert_array_equal(resumed[1], straight[1])
    assert [p.name for p in cache.iterdir()] == [p.name for p in (tmp_path / "straight").iterdir()]  # one .npz
    assert not list(cache.glob("*.part"))

    monkeypatch.setattr(distill_mod, "load_engine", lambda *a, **k: pytest.fail("teacher run again"))
    cached = teacher_logits(ck, texts, cache, "cpu", 2, chunk=3)
    np.testing.assert_array_equal(cached[0], straight[0])


def test_teacher_logits_recompute_an_unreadable_chunk_and_ignore_another_runs_chunks(tmp_path, monkeypatch):
    ck, _ = make_tiny_checkpoint(tmp_path / "teacher")
    texts = ["Apple shares jump", "Fed holds rates", "Oil slumps", "Gold rises"]
    want = teacher_logits(ck, texts, tmp_path / "ref", "cpu", 2, chunk=2)
    cache = tmp_path / "cache"
    ref = next((tmp_path / "ref").glob("*.npz"))
    part_dir = cache / (ref.name + ".part")
    part_dir.mkdir(parents=True)
    (part_dir / "chunk-000000000-2.npz").write_bytes(b"PK\x03\x04 truncated")  # a broken chunk
    np.savez(part_dir / "chunk-000000002-2.npz", topic=np.zeros((3, 20)), sentiment=np.zeros((3, 3)))  # wrong rows
    other = cache / "teacher-tiny-test-000000000000000000000000.npz.part"  # other texts' chunks: left alone
    other.mkdir()
    np.savez(other / "chunk-000000000-2.npz", topic=np.zeros((2, 20)), sentiment=np.zeros((2, 3)))
    got = teacher_logits(ck, texts, cache, "cpu", 2, chunk=2)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert not part_dir.exists() and other.is_dir()


def test_interrupted_distill_resumes_to_the_same_weights(tmp_path, monkeypatch):
    """A distillation killed mid-epoch continues from its resume file (same command again) and ends
    bit-identical to an uninterrupted run; other settings are refused, --no-resume starts afresh."""
    from safetensors.torch import load_file

    from model.distill import DistillConfig, distill
    from model.train import resume_file
    from tests.support.tiny_data import make_tiny_data
    from tests.support.tiny_model import make_tiny_base

    data = make_tiny_data(tmp_path / "data")
    teacher, _ = make_tiny_checkpoint(tmp_path / "teacher")
    common = dict(teacher=teacher, data=data, base=make_tiny_base(tmp_path / "base"), stocknet=0, generated=24,
                  epochs=2, batch_size=8, val_fraction=0.2, device="cpu", progress=False, seed=3,
                  cache_dir=tmp_path / "logits", save_dtype="float32")
    distill(DistillConfig(out=tmp_path / "straight", **common))  # computes the teacher's logits; the runs
    # below read them from the cache: the student must not depend on which (loading the teacher draws from torch's RNG)

    # training batches only (validation pads in model.train): ~20 a epoch, so the 27th is in epoch 2
    calls = patch_calls(monkeypatch, distill_mod, "_pad", die_at=27)
    cfg = DistillConfig(out=tmp_path / "resumed", save_every_s=1e-9, **common)  # resume state after every step
    with pytest.raises(KeyboardInterrupt):
        distill(cfg)
    state = resume_file(cfg.out)
    assert state.is_file() and not cfg.out.exists()
    saved = torch.load(state, weights_only=False)
    assert saved["epoch"] == 2 and 0 < saved["step"] < len(saved["batches"]) and len(saved["history"]) == 1
    assert saved["config"]["teacher_version"] == "tiny-test" and len(saved["config"]["texts_sha256"]) == 64
    monkeypatch.setattr(distill_mod, "_pad", calls["real"])
    stale = resume_file(tmp_path / "fresh")
    stale.write_bytes(state.read_bytes())  # for --no-resume below

    with pytest.raises(Exception, match="other settings"):
        distill(DistillConfig(**{**cfg.__dict__, "temperature": 3.0}))
    with pytest.raises(Exception, match="other settings"):  # other texts: one more generated headline
        distill(DistillConfig(**{**cfg.__dict__, "generated": 25}))
    assert state.is_file()
    distill(cfg)
    assert not state.exists()  # done: the resume file is removed
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def history(d):
        return [{k: v for k, v in r.items() if k != "elapsed_s"}
                for r in json.loads((d / "metrics.json").read_text())["history"]]

    assert history(tmp_path / "resumed") == history(tmp_path / "straight")

    # --no-resume: a resume file from other settings is neither refused nor read, and is removed at the end
    fresh = DistillConfig(**{**cfg.__dict__, "out": tmp_path / "fresh", "temperature": 3.0})
    with pytest.raises(Exception, match="other settings"):
        distill(fresh)
    distill(DistillConfig(**{**fresh.__dict__, "resume": False}))
    assert not stale.exists() and (tmp_path / "fresh" / "model.safetensors").is_file()


def test_generated_texts_are_the_same_in_another_process():
    """The student's texts must be identical on every run of the same command, or the logit cache misses and
    the resume file is refused: the generated headlines may not depend on Python's per-process hash seed."""
    import os
    import subprocess
    import sys

    from model.distill import _texts_key, generated_texts

    here = generated_texts(300)
    assert len(here) == 300 and generated_texts(300) == here
    code = "from model.distill import _texts_key, generated_texts; print(_texts_key(generated_texts(300)))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "12345"}, cwd=Path(__file__).resolve().parents[3])
    assert other.stdout.strip() == _texts_key(here)


def test_cli_passes_the_resume_and_precision_options(tmp_path, monkeypatch):
    """``finsent train`` / ``finsent distill``: --no-resume, --save-every and --cpu-amp reach the configs."""
    import model.train as train_mod
    from model.cli import main as model_cli

    got = {}
    monkeypatch.setattr(distill_mod, "distill", lambda cfg: got.setdefault("distill", cfg))
    monkeypatch.setattr(train_mod, "train", lambda cfg: got.setdefault("train", cfg))
    teacher, out = str(tmp_path / "teacher"), str(tmp_path / "student")
    assert model_cli(["distill", "--teacher", teacher, "--out", out, "--cache-dir", str(tmp_path / "logits"),
                      "--device", "cpu"]) == 0
    cfg = got.pop("distill")
    assert (cfg.resume, cfg.save_every_s, cfg.cpu_amp, str(cfg.cache_dir)) == (True, 600.0, "auto",
                                                                                str(tmp_path / "logits"))
    assert model_cli(["distill", "--teacher", teacher, "--out", out, "--no-resume", "--save-every", "60",
                      "--cpu-amp", "off"]) == 0
    cfg = got.pop("distill")
    assert (cfg.resume, cfg.save_every_s, cfg.cpu_amp) == (False, 60.0, "off")
    assert model_cli(["train", "--out", out, "--cpu-amp", "bf16", "--save-every", "600", "--no-resume"]) == 0
    cfg = got.pop("train")
    assert (cfg.resume, cfg.save_every_s, cfg.cpu_amp) == (False, 600.0, "bf16")
    with pytest.raises(SystemExit):
        model_cli(["distill", "--teacher", teacher, "--cpu-amp", "fp16"])
