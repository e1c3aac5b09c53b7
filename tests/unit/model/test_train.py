"""Data split and a tiny end-to-end training run (random tiny encoder, CPU, seconds)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from model.cli import main as model_cli
from model.data import load_splits, normalise, stratified_split, write_val_csvs
from model.engine import load_engine
from model.train import BestEpoch, TrainConfig, train
from stream.base.labels import TOPICS
from tests.support.interrupt import patch_calls
from tests.support.tiny_data import make_tiny_data
from tests.support.tiny_model import make_tiny_base


def test_stratified_split_is_seeded_and_per_class():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 3 + [3])
    a = stratified_split(labels, 0.2, seed=1)
    assert np.array_equal(a, stratified_split(labels, 0.2, seed=1))
    assert not np.array_equal(a, stratified_split(labels, 0.2, seed=2))
    assert [int(a[labels == c].sum()) for c in range(4)] == [10, 6, 1, 0]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_tiny_data(tmp_path_factory.mktemp("data"))


def test_splits_dedup_no_leak_and_csvs(data_dir, tmp_path):
    splits = load_splits(data_dir, 0.25, seed=5)
    assert [s.key for s in splits] == ["tfns", "fpb", "topic"]
    fpb = splits[1]
    assert fpb.duplicates == 1 and len(fpb.train_text) + len(fpb.val_text) == 29
    for s in splits:
        assert not {normalise(t) for t in s.train_text} & {normalise(t) for t in s.val_text}
    topic = splits[2]
    assert sorted(set(topic.val_label)) == list(range(20))  # every class in validation
    paths = write_val_csvs(splits, tmp_path)
    assert [p.name for p in paths] == ["sentiment_tfns_val.csv", "sentiment_fpb_val.csv", "topic_val.csv"]
    df = pd.read_csv(paths[2])
    assert set(df["label"]) <= set(TOPICS)
    again = load_splits(data_dir, 0.25, seed=5)
    assert [s.val_text for s in again] == [s.val_text for s in splits]


def test_tiny_training_run_writes_a_loadable_checkpoint(data_dir, tmp_path, capsys):
    base = make_tiny_base(tmp_path / "base")
    cfg = TrainConfig(data=data_dir, out=tmp_path / "ck", base=base, epochs=2, batch_size=8, val_fraction=0.2,
                      device="cpu", progress=False, seed=3, splits_out=tmp_path / "val")
    out = train(cfg)
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "metrics.json", "tokenizer.json"} <= files
    conf = json.loads((out / "config.json").read_text())
    assert conf["model_version"].startswith("finsent-minilm6-")
    assert "non-commercial" in conf["licence"]
    assert {d["key"] for d in conf["training"]["data"]} == {"tfns", "fpb", "topic"}
    assert conf["label_maps"]["tfns_sentiment"]["0"] == "negative"
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["validation"]) == {"tfns", "fpb", "topic"}
    assert 1 <= len(metrics["history"]) <= 2
    assert load_engine(out, "cpu", warmup=False).predict(["oil falls"])[0].sentiment

    # deterministic: same seed, same weights
    cfg2 = TrainConfig(**{**cfg.__dict__, "out": tmp_path / "ck2", "splits_out": None})
    train(cfg2)
    a, b = load_file(str(out / "model.safetensors")), load_file(str(tmp_path / "ck2" / "model.safetensors"))
    assert all((a[k] == b[k]).all() for k in a)

    # evaluate on the written validation CSV, as a user would
    capsys.readouterr()
    assert model_cli(["evaluate", "--task", "topic", "--data", str(tmp_path / "val" / "topic_val.csv"),
                      "--model", str(out), "--device", "cpu", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 20 and len(report["confusion"]) == 20 and "macro_f1" in report
    assert model_cli(["evaluate", "--task", "sentiment", "--data", str(data_dir / "sentiment" / "tfns_train.csv"),
                      "--model", str(out), "--device", "cpu"]) == 0
    assert "confusion matrix" in capsys.readouterr().out


def test_no_fpb_training_is_commercially_licensed(data_dir, tmp_path):
    base = make_tiny_base(tmp_path / "base")
    out = train(TrainConfig(data=data_dir, out=tmp_path / "ck", base=base, epochs=1, batch_size=16,
                            device="cpu", progress=False, no_fpb=True))
    conf = json.loads((out / "config.json").read_text())
    assert "fpb" not in {d["key"] for d in conf["training"]["data"]}
    assert "non-commercial" not in conf["licence"].replace("no non-commercial", "")
    assert conf["model_version"].startswith("finsent-minilm6-nofpb-")


def test_interrupted_run_resumes_to_the_same_weights(data_dir, tmp_path, monkeypatch):
    """A run killed mid-epoch continues from its resume file and ends bit-identical to an uninterrupted one."""
    import model.train as train_mod
    from model.train import resume_file

    base = make_tiny_base(tmp_path / "base")
    common = dict(data=data_dir, base=base, epochs=2, batch_size=8, val_fraction=0.2, device="cpu",
                  progress=False, seed=3)
    train(TrainConfig(out=tmp_path / "straight", **common))

    # the 28th batch is in the middle of epoch 2 (17 steps + 3 eval batches an epoch)
    calls = patch_calls(monkeypatch, train_mod, "_pad", die_at=28)
    cfg = TrainConfig(out=tmp_path / "resumed", save_every_s=1e-9, **common)  # resume state after every step
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    state = resume_file(cfg.out)
    assert state.is_file() and not cfg.out.exists()
    monkeypatch.setattr(train_mod, "_pad", calls["real"])
    import torch

    saved = torch.load(state, weights_only=False)
    assert saved["epoch"] == 2 and 0 < saved["step"] < len(saved["batches"])
    # the format the teacher runs of 2026-12-02 write (one is resumed by a later session): keep it readable
    assert set(saved) == {"config", "epoch", "step", "batches", "model", "opt", "sched", "scaler", "rng",
                          "torch_rng", "best_score", "best_epoch", "best_state", "bad_epochs", "history",
                          "elapsed_s"}
    assert saved["config"]["cpu_amp"] == "auto" and "device" not in saved["config"]
    with pytest.raises(Exception, match="other settings"):
        train(TrainConfig(**{**cfg.__dict__, "lr": 1e-3}))
    train(cfg)
    assert not state.exists()  # done: the resume file is removed
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert all((a[k] == b[k]).all() for k in a)


def test_sigterm_saves_at_the_current_step_and_the_run_resumes_to_the_same_weights(data_dir, tmp_path, monkeypatch):
    """SIGTERM (a session or service stopped) mid-epoch: the step finishes, the state is saved exactly there
    even with no periodic saves, the process exits 143, and the same command ends bit-identical to a run that
    was never stopped.  Outside the loop the previous handler is back."""
    import signal

    import model.train as train_mod
    from model.train import resume_file

    base = make_tiny_base(tmp_path / "base")
    common = dict(data=data_dir, base=base, epochs=2, batch_size=8, val_fraction=0.2, device="cpu",
                  progress=False, seed=3, save_every_s=0)
    train(TrainConfig(out=tmp_path / "straight", **common))
    before = signal.getsignal(signal.SIGTERM)
    calls = patch_calls(monkeypatch, train_mod, "_pad", die_at=25, signal=signal.SIGTERM)  # epoch 2's 5th
    cfg = TrainConfig(out=tmp_path / "resumed", **common)
    with pytest.raises(SystemExit) as stopped:
        train(cfg)
    assert stopped.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before
    saved = torch.load(resume_file(cfg.out), weights_only=False)
    assert (saved["epoch"], saved["step"]) == (2, 5)  # 17 steps + 3 validation batches in epoch 1
    monkeypatch.setattr(train_mod, "_pad", calls["real"])
    train(cfg)
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert all((a[k] == b[k]).all() for k in a)


def test_best_epoch_keeps_the_best_weights_and_stops_after_patience_epochs_without_better():
    model = torch.nn.Linear(2, 1)
    best = BestEpoch()
    assert not best.update(model, 0.5, 1, patience=2)
    kept = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    assert not best.update(model, 0.5, 2, patience=2)  # equal is not better
    assert best.update(model, 0.4, 3, patience=2)  # second epoch without better: stop
    assert (best.score, best.epoch, best.bad) == (0.5, 1, 2)
    assert all(torch.equal(best.state[k], kept[k]) for k in kept)
    assert not best.update(model, 0.6, 4, patience=2) and best.bad == 0 and best.epoch == 4


# -- training precision (training_amp) -----------------------------------------------------------------
CPU = torch.device("cpu")


@pytest.mark.parametrize("features, expected", [
    ({"avx2", "avx512f", "amx_bf16", "amx_tile"}, torch.bfloat16),  # Sapphire Rapids and later: AMX
    ({"avx2", "avx512f", "avx512_bf16"}, torch.bfloat16),  # Cooper Lake / Zen 4: AVX-512 BF16
    ({"avx2", "fma", "avx512f", "avx512_vnni"}, None),  # VNNI without bf16: emulated bf16 is slower, fp32
    ({"avx2", "fma"}, None),  # AVX2 only
    (set(), None),  # nothing known (e.g. not x86)
])
def test_training_amp_auto_uses_bf16_only_where_the_cpu_has_native_bf16(features, expected):
    from model.train import training_amp

    assert training_amp(CPU, "auto", frozenset(features)) == (expected, None)


def test_training_amp_off_and_forced_bf16_ignore_the_features():
    from model.train import training_amp

    assert training_amp(CPU, "off", frozenset({"amx_bf16", "avx512_bf16"})) == (None, None)
    assert training_amp(CPU, "bf16", frozenset({"avx2"})) == (torch.bfloat16, None)
    assert training_amp(CPU, "bf16", frozenset()) == (torch.bfloat16, None)


def test_training_amp_auto_reads_the_cpu_features_when_none_are_given(monkeypatch):
    from model.train import training_amp

    monkeypatch.setenv("FINSENT_CPU_FEATURES", "avx2,avx512_bf16")
    assert training_amp(CPU, "auto") == (torch.bfloat16, None)
    monkeypatch.setenv("FINSENT_CPU_FEATURES", "avx2,fma")
    assert training_amp(CPU)[0] is None


@pytest.mark.parametrize("bad", ["fp16", "BF16", "", "on"])
def test_training_amp_refuses_an_unknown_setting(bad):
    from model.train import training_amp
    from stream.base.errors import UserError

    with pytest.raises(UserError, match="cpu-amp"):
        training_amp(CPU, bad, frozenset({"avx512_bf16"}))


def test_run_stopped_after_the_last_epoch_saves_again_without_training(data_dir, tmp_path, monkeypatch):
    """Stopped in the final validation (the checkpoint written, metrics.json not yet), the same command again
    re-saves the same checkpoint from the resume file without a training step; then the file is removed."""
    import model.train as train_mod
    from model.train import resume_file

    cfg = TrainConfig(data=data_dir, out=tmp_path / "ck", base=make_tiny_base(tmp_path / "base"), epochs=1,
                      batch_size=16, val_fraction=0.2, device="cpu", progress=False, seed=3)

    def stopped(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "final_validation", stopped)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    assert resume_file(cfg.out).is_file() and not (cfg.out / "metrics.json").exists()
    first = load_file(str(cfg.out / "model.safetensors"))
    monkeypatch.undo()

    # counts training and per-epoch validation batches; the final validation uses the engine
    calls = patch_calls(monkeypatch, train_mod, "_pad")
    train(cfg)
    assert calls["n"] == 0 and not resume_file(cfg.out).exists() and (cfg.out / "metrics.json").is_file()
    again = load_file(str(cfg.out / "model.safetensors"))
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert len(json.loads((cfg.out / "metrics.json").read_text())["history"]) == 1
