"""Label maps: topic ids as in the data README, sentiment names, --label-map parsing."""

import json
import re

import pytest

from model.labels import default_label_map, labels_for, map_labels, resolve_label_map
from stream.base.errors import UserError
from stream.base.labels import SENTIMENTS, TOPICS
from tests.conftest import SHARED_DATA


def test_topics_match_data_readme_ids():
    assert len(TOPICS) == 20
    assert TOPICS[0] == "Analyst Update"
    assert TOPICS[11] == "IPO"
    assert TOPICS[13] == "M&A, Investments"
    assert TOPICS[19] == "Stock Movement"
    readme = SHARED_DATA / "README.md"
    if readme.is_file():  # the README's table: | id | topic | id | topic |
        pairs = re.findall(r"\|\s*(\d+)\s*\|\s*([^|]+?)\s*(?=\|)", readme.read_text())
        table = {int(i): name for i, name in pairs}
        assert {i: TOPICS[i] for i in table} == table


def test_sentiment_order_and_tfns_ids():
    assert SENTIMENTS == ("negative", "neutral", "positive")
    m = default_label_map("sentiment")
    assert [m[k] for k in ("0", "1", "2")] == ["negative", "positive", "neutral"]  # Bearish, Bullish, Neutral
    assert m["bearish"] == "negative" and m["bullish"] == "positive"


def test_map_labels_names_ids_and_case():
    m = default_label_map("topic")
    assert map_labels("topic", ["0", 19, "ipo", "Gold, Metals, Materials", "5.0"], m) == [0, 19, 11, 10, 5]
    s = default_label_map("sentiment")
    assert map_labels("sentiment", ["Negative", "NEUTRAL", "positive", "0", "Bullish"], s) == [0, 1, 2, 0, 2]


def test_unknown_label_is_user_error():
    with pytest.raises(UserError, match="unknown topic label"):
        map_labels("topic", ["20"], default_label_map("topic"))
    with pytest.raises(UserError):
        labels_for("emotion")


def test_label_map_presets_inline_and_file(tmp_path):
    assert resolve_label_map("sentiment", "tfns") == {"0": "negative", "1": "positive", "2": "neutral"}
    inline = resolve_label_map("sentiment", '{"bad": "negative", "meh": 1, "good": "Bullish"}')
    assert inline == {"bad": "negative", "meh": "neutral", "good": "positive"}
    f = tmp_path / "map.json"
    f.write_text(json.dumps({"a": "IPO", "b": 0}))
    assert resolve_label_map("topic", str(f)) == {"a": "IPO", "b": "Analyst Update"}
    for bad in ("nope", "{not json", '{"x": "joy"}', "[1, 2]"):
        with pytest.raises(UserError):
            resolve_label_map("sentiment", bad)
