"""Distillation loss: its values, its gradients, and a tiny student that learns a tiny teacher."""

import gzip
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import model.distill as distill_mod
from model.distill import IGNORE, distill_loss, soft_kl, stocknet_texts, teacher_logits
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
    soft_only, p0 = distill_loss(s_t, s_s, t_t, t_s, topic_y, sent_y, temperature=2.0, alpha=0.0)
    hard_only, p1 = distill_loss(s_t, s_s, t_t, t_s, topic_y, sent_y, temperature=2.0, alpha=1.0)
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
    for step in range(60):
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
