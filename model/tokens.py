"""The checkpoint's tokenizer through the ``tokenizers`` library (no torch, no transformers).

One way to turn texts into token ids for every engine that does not need torch: the ONNX Runtime
engine (:mod:`model.ort`) and the zero-cost engine of the pipeline benchmark (:mod:`model.null`), so the
benchmark's ceiling pays exactly the tokenizer cost the real CPU path pays.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def load_tokenizer_file(directory: str | os.PathLike, max_length: int) -> Any:
    """``tokenizers.Tokenizer`` from ``directory/tokenizer.json``: no padding, truncated to ``max_length``."""
    from tokenizers import Tokenizer  # here: model.tokens is imported by modules that may never tokenize

    tok = Tokenizer.from_file(str(Path(directory) / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length)
    return tok


def token_ids(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """The token ids of ``texts`` (special tokens added), one list per text.

    ``encode_batch_fast`` computes no character offsets, which nothing here reads: the same ids as
    ``encode_batch`` (unit test on real headlines) for about 20% less time (59 against 74 us per
    StockNet tweet in batches of 64, measured on this project's 2-core Xeon).  A tokenizer without it
    (an older ``tokenizers``, a test fake) uses ``encode_batch``."""
    encode = getattr(tokenizer, "encode_batch_fast", None) or tokenizer.encode_batch
    return [e.ids for e in encode(list(texts), add_special_tokens=True)]


def token_ids_offsets(tokenizer: Any, texts: Sequence[str]) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
    """The token ids of ``texts`` and each token's character offsets (``(0, 0)`` for special tokens): what the
    entity head needs to find the tokens of a mention.  The same ids as :func:`token_ids` (unit test)."""
    encs = tokenizer.encode_batch(list(texts), add_special_tokens=True)
    return [e.ids for e in encs], [list(e.offsets) for e in encs]
