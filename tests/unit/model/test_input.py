"""The one input contract: the worker, classify, evaluate, rescore and training feed the model the same text."""

import json

import pytest
from hypothesis import given, settings, strategies as st

from model.classify import parse_line
from model.data import SOURCES, Split
from model.engine import build_text
from storage.rescore import _default_text_fn
from stream.messages.raw_message import InvalidRecord, model_text, normalize_text, parse_message
from stream.messages.text import URL_TOKEN, model_input
from tests.conftest import REPO

CASES = [  # (title, summary, what the model must read)
    ("Apple &amp; Google <b>rally</b>", "<p>Shares up 5%&nbsp;today</p>", "Apple & Google rally. Shares up 5% today"),
    ("AT&amp;T &lt;b&gt; up <i>5%</i>", None, "AT&T up 5%"),
    ("Tesla recalls 2M cars https://t.co/AbC123xYz", None, f"Tesla recalls 2M cars {URL_TOKEN}"),
    ("Tesla recalls 2M cars https://t.co/Zz9", None, f"Tesla recalls 2M cars {URL_TOKEN}"),  # other link: same text
    ("Fed holds rates:", "Full story at www.reuters.com/markets/x?id=1 and HTTP://EXAMPLE.COM/a",
     f"Fed holds rates: Full story at {URL_TOKEN} and {URL_TOKEN}"),
    ("  Oil\n\tslumps  ", "  Oil slumps ", "Oil slumps"),  # summary equal to the title is dropped
]


def worker_text(title, summary):
    msg = {"title": title, "published_at": "2025-03-13T14:00:00Z"}
    if summary is not None:
        msg["summary"] = summary
    return parse_message(msg).model_text


def classify_text(title, summary):
    obj = {"id": "x", "title": title}
    if summary is not None:
        obj["summary"] = summary
    line = parse_line(json.dumps(obj))
    assert line.error is None
    return line.text


def training_text(title, summary):
    assert summary is None
    split = Split(key="tfns", task="sentiment", train_text=[title], train_label=[0], val_text=[title],
                  val_label=[0], rows=1, duplicates=0, sha256="", spec=SOURCES[0])
    assert split.train_inputs == split.val_inputs
    return split.val_inputs[0]


@pytest.mark.parametrize("title,summary,expected", CASES)
def test_worker_and_classify_read_identical_text(title, summary, expected):
    assert worker_text(title, summary) == expected
    assert classify_text(title, summary) == expected
    assert _default_text_fn()(title, summary) == expected  # rescore
    assert build_text(title, summary) == expected  # model.engine's public helper
    assert model_text(title, summary) == expected


@pytest.mark.parametrize("title,summary,expected", [c for c in CASES if c[1] is None])
def test_text_field_and_training_read_the_same(title, summary, expected):
    text = parse_line(json.dumps({"text": title})).text  # classify's other input form (and evaluate's CSVs)
    assert text == expected
    assert training_text(title, summary) == expected


def test_ids_still_ignore_links():
    # stream.messages.raw_message.normalize_text (ids, validation) keeps removing URLs: ids of stored articles do not move
    assert normalize_text("Tesla recalls https://t.co/x") == "Tesla recalls"


_FRAGMENTS = st.sampled_from(["&amp;", "&lt;b&gt;", "<i>", "</p>", " https://t.co/x1 ", "www.ft.com/a ", "\n", "\t",
                              "  ", ".", ":", "$AAPL", "é", "\u00a0", "&#39;", "<a href='x'>", "URL"])
_TEXT = st.lists(st.one_of(st.text(max_size=12), _FRAGMENTS), max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(title=_TEXT, summary=st.one_of(st.none(), _TEXT))
def test_property_all_paths_agree(title, summary):
    expected = model_input(title, summary)
    assert expected == expected.strip() and "  " not in expected
    assert build_text(title, summary) == expected
    assert _default_text_fn()(title, summary) == expected
    try:
        got = worker_text(title, summary)
    except InvalidRecord:
        got = None  # the worker refused it (empty or invisible title, ...): nothing is scored
    if got is not None:
        assert got == expected
    line = parse_line(json.dumps({"title": title, "summary": summary}))
    text, error = line.text, line.error
    if expected.strip():
        assert text == expected and error is None
    else:
        assert text is None and error


def test_contract_module_imports_nothing_of_finsent():
    src = (REPO / "stream" / "messages" / "text.py").read_text()
    for pkg in ("stream", "model", "storage", "alerts", "deploy"):
        assert f"import {pkg}" not in src and f"from {pkg}" not in src
