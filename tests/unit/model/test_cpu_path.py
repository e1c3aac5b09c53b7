"""CPU inference path: selection from (faked) CPU features, forcing, and each path's answers."""

import numpy as np
import pytest
import torch

import model.cpu as cpu_mod
import model.engine as engine_mod
from model.cpu import cpu_features, prepare_cpu_model, select_cpu_path
from model.engine import load_engine
from stream.base.errors import UserError
from tests.support.tiny_model import make_tiny_checkpoint, make_tiny_model

SAPPHIRE_RAPIDS = {"sse4_2", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"}
ZEN4 = {"sse4_2", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"}
CASCADE_LAKE = {"sse4_2", "avx2", "fma", "avx512f", "avx512_vnni"}
ALDER_LAKE = {"sse4_2", "avx2", "fma", "avx_vnni"}
HASWELL = {"sse4_2", "avx2", "fma"}
OLD = {"sse4_2"}


@pytest.mark.parametrize("int8_auto", [True, False])
@pytest.mark.parametrize("features,path,word", [
    (SAPPHIRE_RAPIDS, "bf16", "amx_bf16"),
    (ZEN4, "bf16", "avx512_bf16"),
    (CASCADE_LAKE, "int8", "avx512_vnni"),
    (ALDER_LAKE, "int8", "avx_vnni"),
    (HASWELL, "int8", "avx2"),
    (OLD, "fp32", "no avx2"),
])
def test_torch_selection_from_faked_features(monkeypatch, features, path, word, int8_auto):
    """Without ONNX Runtime: the torch paths."""
    monkeypatch.setattr(cpu_mod, "INT8_AUTO", int8_auto)
    monkeypatch.setattr(cpu_mod, "BF16_OVER_ONNX", False)
    if path == "int8" and not int8_auto:  # int8 not (yet) within the accuracy limit: fp32, saying why
        path = "fp32"
    choice = select_cpu_path(features, machine="x86_64", onnx=False)
    assert choice.path == path and choice.runtime == "torch"
    assert word in choice.reason
    assert choice.dtype == (torch.bfloat16 if path == "bf16" else torch.float32)


@pytest.mark.parametrize("onnx_int8_auto", [True, False])
@pytest.mark.parametrize("bf16_over_onnx", [True, False])
@pytest.mark.parametrize("features,word", [
    (SAPPHIRE_RAPIDS, "amx_bf16"), (ZEN4, "avx512_bf16"), (CASCADE_LAKE, "avx512_vnni"), (ALDER_LAKE, "avx_vnni"),
    (HASWELL, "avx2"), (OLD, "no avx2"),
])
def test_onnx_selection_from_faked_features(monkeypatch, features, word, onnx_int8_auto, bf16_over_onnx):
    """With ONNX Runtime: ONNX fp32 (int8 once within the accuracy limit) unless bf16 measured faster."""
    monkeypatch.setattr(cpu_mod, "ONNX_INT8_AUTO", onnx_int8_auto)
    monkeypatch.setattr(cpu_mod, "BF16_OVER_ONNX", bf16_over_onnx)
    choice = select_cpu_path(features, machine="x86_64", onnx=True)
    bf16 = bool(features & {"amx_bf16", "avx512_bf16"})
    if bf16 and bf16_over_onnx:
        assert choice.path == "bf16" and choice.runtime == "torch"
    elif onnx_int8_auto and "avx2" in features:
        assert choice.path == "onnx-int8" and choice.runtime == "onnxruntime"
        assert ("int8 dot products" if features & {"avx512_vnni", "avx_vnni"} else "AVX2 int8 kernels") in choice.reason
    else:
        assert choice.path == "onnx" and "ONNX Runtime fp32" in choice.reason
    assert word in choice.reason
    assert select_cpu_path(features, machine="aarch64", onnx=True).path in ("onnx", "bf16")  # int8 only on x86


def test_measured_defaults_give_avx2_cpus_onnx_int8():
    """The shipped settings (not monkeypatched): an AVX2-only x86 CPU gets ONNX int8, an Arm one ONNX fp32."""
    for features in (HASWELL, ALDER_LAKE, CASCADE_LAKE):
        assert select_cpu_path(features, machine="x86_64", onnx=True).path == "onnx-int8"
    assert select_cpu_path({"asimd"}, machine="aarch64", onnx=True).path == "onnx"
    assert select_cpu_path(OLD, machine="x86_64", onnx=True).path == "onnx"


def test_fallback_from_onnx_says_why():
    alt = cpu_mod.fallback_from_onnx(cpu_mod.CpuChoice("onnx", "x"), HASWELL, "onnxruntime not installed")
    assert alt.runtime == "torch" and "onnxruntime not installed" in alt.reason


def test_arm_gets_fp32_unless_it_has_bf16():
    assert select_cpu_path({"asimd", "fp"}, machine="aarch64", onnx=False).path == "fp32"


def test_forced_path_wins_and_bad_name_refused():
    assert select_cpu_path(SAPPHIRE_RAPIDS, "int8").path == "int8"
    assert select_cpu_path(HASWELL, "fp32").path == "fp32"
    assert select_cpu_path(SAPPHIRE_RAPIDS, "onnx-int8").runtime == "onnxruntime"
    assert select_cpu_path(SAPPHIRE_RAPIDS, "ort").path == "onnx"
    assert "forced" in select_cpu_path(HASWELL, "bf16").reason
    assert select_cpu_path(HASWELL, "auto", machine="x86_64", onnx=False).path == (
        "int8" if cpu_mod.INT8_AUTO else "fp32")
    with pytest.raises(ValueError, match="unknown CPU path"):
        select_cpu_path(HASWELL, "int4")


def test_features_parsed_from_cpuinfo_and_env_override(monkeypatch):
    monkeypatch.delenv(cpu_mod.ENV_FEATURES, raising=False)
    info = "processor\t: 0\nflags\t\t: fpu sse4_2 avx2 avx512_vnni\nbogomips\t: 1\n"
    assert cpu_features(info) == {"fpu", "sse4_2", "avx2", "avx512_vnni"}
    monkeypatch.setenv(cpu_mod.ENV_FEATURES, "AVX2, fma")
    assert cpu_features(info) == {"avx2", "fma"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ck") / "tiny")


TEXTS = ["Apple shares jump after earnings beat", "Fed holds rates", "Oil slumps as OPEC+ signals more supply",
         "Tesla names new CFO", "Gold rises", "JPMorgan raises dividend; shares up 3% in heavy trading"]


def test_load_engine_uses_selected_path_and_reports_it(monkeypatch, tiny, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv(cpu_mod.ENV_VAR, raising=False)
    monkeypatch.setattr(cpu_mod, "INT8_AUTO", True)
    monkeypatch.setattr(cpu_mod, "_onnx_available", lambda: False)  # the torch paths (ONNX: test_ort.py)
    monkeypatch.setattr(engine_mod, "cpu_features", lambda: frozenset(HASWELL))
    monkeypatch.setattr(cpu_mod.platform, "machine", lambda: "x86_64")
    with caplog.at_level("INFO", logger="model.engine"):
        e = load_engine(tiny[0], "auto", warmup=False)
    assert e.cpu_path == "int8" and e.describe()["cpu_path"] == "int8"
    assert "avx2" in e.describe()["cpu_path_reason"]
    assert any("CPU path int8" in r.getMessage() for r in caplog.records)
    mods = list(e.model.modules())
    assert not any(type(m) is torch.nn.Linear for m in mods)  # every Linear quantised
    assert sum(type(m).__module__.startswith("torch.ao.nn.quantized.dynamic") for m in mods) >= 14
    monkeypatch.setattr(engine_mod, "cpu_features", lambda: frozenset(ZEN4))
    assert load_engine(tiny[0], "cpu", warmup=False).cpu_path == "bf16"
    monkeypatch.setenv(cpu_mod.ENV_VAR, "fp32")  # the env var forces a path
    assert load_engine(tiny[0], "cpu", warmup=False).cpu_path == "fp32"
    monkeypatch.delenv(cpu_mod.ENV_VAR)
    assert load_engine(tiny[0], "cpu", dtype="float32", warmup=False).cpu_path == "fp32"  # explicit dtype
    with pytest.raises(UserError, match="unknown CPU path"):
        load_engine(tiny[0], "cpu", cpu_path="int4", warmup=False)


@pytest.mark.parametrize("path,atol", [("int8", 0.08), ("bf16", 0.05)])
def test_each_path_close_to_fp32(tiny, path, atol):
    ref = load_engine(tiny[0], "cpu", cpu_path="fp32", warmup=False)
    e = load_engine(tiny[0], "cpu", cpu_path=path, warmup=False)
    assert e.cpu_path == path
    a_t, a_s = ref.predict_proba(TEXTS)
    b_t, b_s = e.predict_proba(TEXTS)
    np.testing.assert_allclose(a_t, b_t, atol=atol)
    np.testing.assert_allclose(a_s, b_s, atol=atol)
    assert not np.array_equal(a_t, b_t)  # it really ran another path


def test_prepare_unknown_path_refused():
    with pytest.raises(ValueError):
        prepare_cpu_model(make_tiny_model(), "fp8")


def test_describe_cpu_names_the_model_and_the_features_that_decide_the_speed(monkeypatch):
    from model.cpu import describe_cpu

    monkeypatch.setenv("FINSENT_CPU_FEATURES", "avx2")  # the real CPU is described, not the override
    info = "processor\t: 0\nmodel name\t: Example CPU 9000\nflags\t\t: fpu sse4_2 avx2 avx512_vnni amx_bf16\n"
    line = describe_cpu(info)
    assert line.startswith("Example CPU 9000, ") and "avx2 avx512_vnni amx_bf16" in line
    assert line.endswith("(no avx512_bf16)")
    assert describe_cpu("model name : Old\nflags : fpu sse4_2\n").endswith("no avx2 (no avx512_bf16)")
