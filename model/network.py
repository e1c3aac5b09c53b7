"""The multi-task network: one encoder (BERT, or MPNet for the teacher), mean pooling, two linear heads, and
(checkpoints with ``entity_head``) a third head that scores the sentiment toward named entities."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from transformers import BertConfig, BertModel, PretrainedConfig


def encoder_config(config: Mapping[str, Any], attn_implementation: str = "sdpa") -> PretrainedConfig:
    """A :class:`BertConfig` (or :class:`MPNetConfig` when ``model_type`` is mpnet) from a plain dict."""
    keep = {
        k: v
        for k, v in dict(config).items()
        if not k.startswith("_")
        and k not in ("architectures", "transformers_version", "torch_dtype", "dtype", "model_type")
    }
    if dict(config).get("model_type") == "mpnet":
        from transformers import MPNetConfig  # the teacher only (~20 ms measured): not imported by the serving path

        cfg = MPNetConfig(**keep)
        cfg._attn_implementation = "eager"  # MPNet has no SDPA attention in transformers
        return cfg
    cfg = BertConfig(**keep)
    cfg._attn_implementation = attn_implementation
    return cfg


ENCODER_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "initializer_range",
    "layer_norm_eps",
    "pad_token_id",
)


MPNET_FIELDS = tuple(f for f in ENCODER_FIELDS if f != "type_vocab_size") + (
    "relative_attention_num_buckets", "bos_token_id", "eos_token_id",
)


def _is_mpnet(cfg: PretrainedConfig) -> bool:
    return getattr(cfg, "model_type", None) == "mpnet"


def encoder_dict(cfg: PretrainedConfig) -> dict[str, Any]:
    """The encoder fields a checkpoint records (stable across transformers 5.x)."""
    if _is_mpnet(cfg):
        return {"model_type": "mpnet", **{k: getattr(cfg, k) for k in MPNET_FIELDS}}
    return {k: getattr(cfg, k) for k in ENCODER_FIELDS}


def build_encoder(cfg: PretrainedConfig) -> nn.Module:
    if _is_mpnet(cfg):
        from transformers import MPNetModel  # the teacher only, as MPNetConfig above

        return MPNetModel(cfg, add_pooling_layer=False)
    return BertModel(cfg, add_pooling_layer=False)


class FinsentModel(nn.Module):
    """Shared encoder; topic and sentiment logits from the mean-pooled tokens.

    Mean pooling matches how all-MiniLM-L6-v2 was pre-trained (sentence
    embeddings), which makes it a better starting point than the [CLS] token.

    With ``entity=True`` an entity head scores the sentiment toward each entity of a text in the same
    encoder pass: ``entity_mask`` (batch x entities x tokens, 1.0 on the tokens of the entity's mentions)
    pools each entity's tokens (mean over all its mentions), and a two-layer head reads that vector
    beside the text's own pooled vector: ``entity_logits`` (batch x entities x sentiments).  An entity row
    with no token (padding, or a name absent from the text) gets logits too; callers ignore them.
    """

    def __init__(self, cfg: PretrainedConfig, n_topics: int, n_sentiments: int, dropout: float = 0.1,
                 entity: bool = False):
        super().__init__()
        self.encoder = build_encoder(cfg)
        self.dropout = nn.Dropout(dropout)
        self.topic_head = nn.Linear(cfg.hidden_size, n_topics)
        self.sentiment_head = nn.Linear(cfg.hidden_size, n_sentiments)
        self.entity_head = (nn.Sequential(nn.Linear(2 * cfg.hidden_size, cfg.hidden_size), nn.GELU(),
                                          nn.Dropout(dropout), nn.Linear(cfg.hidden_size, n_sentiments))
                            if entity else None)
        self.pad_token_id = int(cfg.pad_token_id or 0)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
        entity_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        if attention_mask is None:
            attention_mask = input_ids.ne(self.pad_token_id)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        text = self.dropout(pooled)
        if entity_mask is None or self.entity_head is None:
            return self.topic_head(text), self.sentiment_head(text)
        em = entity_mask.to(hidden.dtype)
        spans = torch.matmul(em, hidden) / em.sum(-1, keepdim=True).clamp_min(1.0)  # batch x entities x hidden
        feats = torch.cat([spans, pooled.unsqueeze(1).expand(-1, em.shape[1], -1)], dim=-1)
        return self.topic_head(text), self.sentiment_head(text), self.entity_head(self.dropout(feats))

    def load_weights(self, state: Mapping[str, torch.Tensor]) -> None:
        """Load a state dict, tolerating only missing/extra *buffers*."""
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        if missing:
            raise ValueError(f"checkpoint lacks {len(missing)} weights, e.g. {missing[:3]}")
        own = self.state_dict()
        filtered = {k: v for k, v in state.items() if k in own}
        self.load_state_dict(filtered, strict=False)
