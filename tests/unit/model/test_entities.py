"""Sentiment toward named entities (issue 22): mention spans -> token masks, and the engines' entity API on a
tiny random checkpoint with an entity head, through ONNX Runtime (fp32, int8) and torch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from model import ort
from model.engine import load_engine
from model.entities import EntityQuery, entity_masks, find_mentions, token_mask
from model.tokens import load_tokenizer_file, token_ids, token_ids_offsets
from tests.support.tiny_model import base_tokenizer_dir, make_tiny_checkpoint

TEXT = "Apple wins patent case against Samsung; Samsung shares fall"


def test_find_mentions_every_whole_word_occurrence_case_insensitive():
    assert find_mentions(TEXT, "samsung") == ((31, 38), (40, 47))
    assert find_mentions(TEXT, "Apple") == ((0, 5),)
    assert find_mentions("Pineapple and Apple's shares", "apple") == ((14, 19),)  # whole word preferred
    assert find_mentions("Infosys-led rally", "Infosys") == ((0, 7),)
    assert find_mentions("Walmartian", "Walmart") == ((0, 7),)  # no whole word: any occurrence
    assert find_mentions(TEXT, "Ryanair") == ()
    assert find_mentions(TEXT, "  ") == () and find_mentions("", "Apple") == ()


@given(st.text(max_size=60), st.text(min_size=1, max_size=8))
def test_mentions_are_spans_of_the_name(text, name):
    for s, e in find_mentions(text, name):
        assert text[s:e].lower() == name.strip().lower()


def test_token_mask_marks_the_tokens_a_span_covers():
    tok = load_tokenizer_file(base_tokenizer_dir(), 64)
    ids, offsets = token_ids_offsets(tok, [TEXT])
    assert ids == token_ids(tok, [TEXT])  # the offsets call gives the serving path's ids
    m = token_mask(offsets[0], find_mentions(TEXT, "Samsung"))
    marked = [tok.id_to_token(i) for i, on in zip(ids[0], m) if on]
    assert marked == ["samsung", "samsung"]
    assert not token_mask(offsets[0], ()).any()
    masks = entity_masks(offsets, [[EntityQuery(((0, 5),)), EntityQuery(())]], 20)
    assert masks.shape == (1, 2, 20) and masks[0, 0].sum() == 1 and masks[0, 1].sum() == 0
    assert entity_masks(offsets, [[]], 20).shape == (1, 1, 20)  # no entity: one empty row


@pytest.fixture(scope="module")
def tiny_entity(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ck") / "tiny-ent", seed=3, entity=True)[0]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv(ort.ENV_CACHE, str(tmp_path_factory.getbasetemp() / "onnx-cache"))


def _queries(text, names):
    return [EntityQuery(find_mentions(text, n)) for n in names]


@pytest.mark.parametrize("path", ["fp32", "onnx", "onnx-int8"])
def test_entity_api_on_every_engine(tiny_entity, path):
    e = load_engine(tiny_entity, "cpu", cpu_path=path, warmup=False)
    assert e.entity_head and e.describe()["entity_head"] is True
    texts = [TEXT, "Walmart cuts forecast, Target gains", "Fed holds rates", "Ryanair and EasyJet"]
    names = [["Apple", "Samsung", "Ryanair"], ["Walmart", "Target"], [], ["EasyJet"]]
    preds = e.predict(texts, [_queries(t, n) for t, n in zip(texts, names)])
    assert [len(p.entities) for p in preds] == [3, 2, 0, 1]  # 0 / 1 / many
    apple, samsung, absent = preds[0].entities
    assert apple.source == samsung.source == "entity" and absent.source == "headline"
    # a target absent from the text gets the text's own sentiment
    assert (absent.sentiment, absent.p_negative) == (preds[0].sentiment, preds[0].p_negative)
    assert apple.sentiment_score != samsung.sentiment_score  # each entity has its own probabilities
    for ent in (apple, samsung):
        assert abs(ent.p_negative + ent.p_neutral + ent.p_positive - 1) < 1e-5
        assert ent.sentiment_score == pytest.approx(ent.p_positive - ent.p_negative)
    # the headline answers are those of a call without entities, and each text's entities are its own
    plain = e.predict(texts)
    assert [p.sentiment for p in plain] == [p.sentiment for p in preds]
    np.testing.assert_allclose([p.p_negative for p in plain], [p.p_negative for p in preds], atol=1e-5)
    alone = e.predict([texts[1]], [_queries(texts[1], ["Walmart", "Target"])])[0]
    np.testing.assert_allclose([x.p_negative for x in alone.entities], [x.p_negative for x in preds[1].entities],
                               atol=1e-5)


def test_a_repeated_mention_pools_every_occurrence(tiny_entity):
    e = load_engine(tiny_entity, "cpu", cpu_path="onnx", warmup=False)
    both = e.predict([TEXT], [[EntityQuery(find_mentions(TEXT, "Samsung"))]])[0].entities[0]
    first = e.predict([TEXT], [[EntityQuery(find_mentions(TEXT, "Samsung")[:1])]])[0].entities[0]
    second = e.predict([TEXT], [[EntityQuery(find_mentions(TEXT, "Samsung")[1:])]])[0].entities[0]
    assert both.sentiment_score not in (first.sentiment_score, second.sentiment_score)


def test_without_an_entity_head_every_entity_gets_the_headline(tmp_path):
    directory, _ = make_tiny_checkpoint(tmp_path / "plain", seed=4)
    e = load_engine(directory, "cpu", cpu_path="onnx", warmup=False)
    assert not e.entity_head
    p = e.predict([TEXT], [_queries(TEXT, ["Apple", "Samsung"])])[0]
    assert [x.source for x in p.entities] == ["headline", "headline"]
    assert {x.sentiment for x in p.entities} == {p.sentiment}
    with pytest.raises(ValueError, match="entity lists"):
        e.predict([TEXT, TEXT], [[]])
