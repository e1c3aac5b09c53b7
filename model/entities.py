"""Entities in a text, as the entity head reads them: character spans -> token masks.  Pure, numpy only.

The entity head (:class:`model.network.FinsentModel` with ``entity=True``) pools the tokens of each
entity's mentions.  A caller names an entity by its mentions' character spans in the *model text*
(:func:`stream.messages.text.model_input`); :func:`find_mentions` finds a name's spans (every occurrence, so a
repeated mention pools all of them), :func:`token_mask` turns spans into the tokens they cover, from the
tokenizer's character offsets.  An entity with no span (a name the text does not contain) has an empty
mask: engines then give it the headline's sentiment (:data:`ABSENT_RULE`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Span = tuple[int, int]

# what an entity absent from the text gets: the text's own sentiment (the best guess the model has)
ABSENT_RULE = "headline"


@dataclass(frozen=True, slots=True)
class EntityQuery:
    """One entity to score in one text: its mentions' character spans in the model text (empty: absent)."""

    spans: tuple[Span, ...]


_WORD = re.compile(r"\w")


def find_mentions(text: str, name: str) -> tuple[Span, ...]:
    """Every occurrence of ``name`` in ``text``, case-insensitively, as ``(start, end)`` spans.

    Whole-word occurrences are preferred ("Apple" in "Apple's", not in "Pineapple"); only when there is
    none, any occurrence counts ("Infosys" in "Infosys-led").  Overlapping occurrences are not repeated."""
    name = name.strip()
    if not name or not text:
        return ()
    low, key = text.lower(), name.lower()
    found: list[Span] = []
    start = low.find(key)
    while start >= 0:
        found.append((start, start + len(key)))
        start = low.find(key, start + len(key))
    whole = [(s, e) for s, e in found
             if (s == 0 or not _WORD.match(text[s - 1]) or not _WORD.match(text[s]))
             and (e == len(text) or not _WORD.match(text[e]) or not _WORD.match(text[e - 1]))]
    return tuple(whole or found)


def token_mask(offsets: Sequence[Span], spans: Sequence[Span]) -> np.ndarray:
    """A float32 mask over the tokens (``offsets``: the tokenizer's character offsets, ``(0, 0)`` for the
    special tokens) that overlap any of ``spans``."""
    mask = np.zeros(len(offsets), np.float32)
    for i, (s, e) in enumerate(offsets):
        if e <= s:
            continue
        for a, b in spans:
            if s < b and e > a:
                mask[i] = 1.0
                break
    return mask


def entity_masks(offsets: Sequence[Sequence[Span]], queries: Sequence[Sequence[EntityQuery]], width: int,
                 rows: np.ndarray | None = None) -> np.ndarray:
    """The ``entity_mask`` input of a padded micro-batch: batch x max entities (at least 1) x ``width``.

    ``rows``: which texts (indices into ``offsets`` / ``queries``) make the micro-batch, in order."""
    idx = np.arange(len(offsets)) if rows is None else rows
    n_ent = max([1] + [len(queries[j]) for j in idx])
    out = np.zeros((len(idx), n_ent, width), np.float32)
    for r, j in enumerate(idx):
        for e, q in enumerate(queries[j]):
            if q.spans:
                m = token_mask(offsets[j], q.spans)
                out[r, e, : min(width, len(m))] = m[:width]
    return out
