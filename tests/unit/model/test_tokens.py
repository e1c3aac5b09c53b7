"""model.tokens: one tokenizer path (``tokenizers``) for the ONNX engine and the null engine."""

import pytest

from model.null import load_null_engine
from model.paths import resolve_checkpoint
from model.tokens import load_tokenizer_file, token_ids
from tests.conftest import SHARED_DATA
from tests.unit.model.test_ort import _real_headlines


@pytest.mark.skipif(not (SHARED_DATA / "topic" / "topic_train.csv").is_file(), reason="no ../shared/data")
def test_fast_ids_equal_encode_batch_on_real_headlines():
    tok = load_tokenizer_file(resolve_checkpoint(None), 128)
    texts = _real_headlines(300) + ["", "a " * 400, "Apple &amp; $AAPL https://t.co \u00e9t\u00e9 \U0001f680"]
    slow = [e.ids for e in tok.encode_batch(texts, add_special_tokens=True)]
    assert token_ids(tok, texts) == slow
    assert max(len(x) for x in slow) == 128  # truncated like the engine's max_length
    assert all(x[0] == tok.token_to_id("[CLS]") and x[-1] == tok.token_to_id("[SEP]") for x in slow)


def test_tokenizer_without_fast_method_uses_encode_batch():
    class Old:
        def encode_batch(self, texts, add_special_tokens=True):
            return [type("E", (), {"ids": [len(t)]})() for t in texts]

    assert token_ids(Old(), ["ab", "c"]) == [[2], [1]]


def test_null_engine_tokenizes_like_the_onnx_engine():
    eng = load_null_engine(None)
    tok = load_tokenizer_file(resolve_checkpoint(None), eng.max_length)
    texts = ["Shares of Acme rose 5% after earnings", "Fed holds rates"]
    assert eng.tokenize(texts) == [e.ids for e in tok.encode_batch(texts)]
    assert len(eng.predict(texts)) == 2 and eng.last_tokenize_s > 0
