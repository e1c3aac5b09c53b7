"""finsent classify: JSON lines in and out, bad lines, order, constant memory."""

import io
import json

import pytest

from model.classify import Line, classify_lines, parse_line
from model.cli import main as model_cli
from model.engine import Prediction, load_engine
from model.prediction import EntitySentiment
from tests.support.tiny_model import make_tiny_checkpoint


class StubEngine:
    """Scores by text length; records the size of every predict() call."""

    model_version = "stub-1"

    def __init__(self):
        self.calls = []

    def predict(self, texts, entities=None):
        self.calls.append(len(texts))
        out = []
        for i, t in enumerate(texts):
            k = len(t) % 20
            ents = tuple(EntitySentiment("neutral", 0.25, 0.5, 0.25, 0.0, "headline") for _ in (entities or [[]] * len(texts))[i])
            out.append(Prediction(topic=f"t{k}", topic_id=k, topic_score=0.5, sentiment="neutral",
                                  p_negative=0.25, p_neutral=0.5, p_positive=0.25, sentiment_score=0.0, entities=ents))
        return out


def test_parse_line():
    assert parse_line(b'{"id": 7, "text": "Apple up"}') == Line(7, "Apple up")
    assert parse_line('{"title": "Apple up", "summary": "On iPhone sales"}').text == "Apple up. On iPhone sales"
    assert parse_line('{"text": "  ", "title": "fallback"}').text == "fallback"
    assert parse_line('{"text": "A", "targets": ["Ryanair", " ", "EasyJet"], "published_at": "2014-01-02"}') == \
        Line(None, "A", targets=("Ryanair", "EasyJet"), published_at="2014-01-02")
    for raw, msg in [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"id": "a"}', "no text"),
        (b'{"text": 5}', "must be a string"),
        (b'{"title": ["x"]}', "must be a string"),
        (b'{"text": "\xff\xfe"}', "not UTF-8"),
        (b'{"text": "x", "targets": "Apple"}', "list of strings"),
        (b'{"text": "x", "targets": [1]}', "list of strings"),
        (b'{"text": "x", "targets": [' + b", ".join([b'"a"'] * 101) + b']}', "at most 100"),
        (b'{"text": "x", "published_at": 5}', "RFC 3339"),
    ]:
        line = parse_line(raw)
        assert line.text is None and msg in line.error, (raw, line.error)
    assert parse_line(b'{"id": "a"}').ident == "a"  # the id is echoed with the error


def test_bad_lines_get_error_rows_in_order():
    lines = [
        b'{"id": "1", "text": "Apple shares jump"}\n',
        b"garbage\n",
        b"\n",  # blank: skipped
        b'{"id": "3", "title": "Fed holds", "summary": "rates unchanged"}\n',
        b'{"id": "4"}\n',
        b'{"text": "no id here"}',
    ]
    out = io.StringIO()
    stats = classify_lines(StubEngine(), lines, out, chunk_size=2)
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [r.get("id") for r in rows] == ["1", None, "3", "4", None]
    assert "error" in rows[1] and rows[1]["line"] == 2
    assert "error" in rows[3] and rows[3]["line"] == 5
    ok = rows[0]
    assert set(ok) == {"id", "topic", "topic_id", "topic_score", "sentiment", "p_negative", "p_neutral",
                       "p_positive", "sentiment_score", "model_version", "tickers", "entities"}
    assert ok["model_version"] == "stub-1"
    assert ok["tickers"] == ["AAPL"] and rows[2]["tickers"] == []  # linked by name; "Fed" is no company
    assert (stats.lines, stats.scored, stats.errors) == (5, 3, 2)


def test_streams_in_bounded_chunks():
    """Lines are consumed lazily and scored chunk by chunk: memory does not grow with the input."""
    engine = StubEngine()
    out = io.StringIO()
    consumed = 0

    def lines():
        nonlocal consumed
        for i in range(5000):
            consumed += 1
            if i == 1000:  # output for the first chunks is already written
                assert out.getvalue().count("\n") >= 900
            yield json.dumps({"id": i, "text": "x" * (i % 50 + 1)}).encode()

    stats = classify_lines(engine, lines(), out, chunk_size=100)
    assert consumed == 5000 and stats.scored == 5000
    assert max(engine.calls) == 100
    ids = [json.loads(x)["id"] for x in out.getvalue().splitlines()]
    assert ids == list(range(5000))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ck") / "tiny")[0]


def test_cli_exit_codes(tmp_path, tiny_dir, capsys):
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": "a", "text": "Apple shares jump"}\n{"title": "Oil falls"}\n')
    assert model_cli(["classify", str(good), "--model", str(tiny_dir), "--device", "cpu"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == ["a", None]
    assert all(r["model_version"] == "tiny-test" for r in rows)

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "Apple shares jump"}\n{oops\n{"id": "c", "text": "Gold rises"}\n')
    out = tmp_path / "out.jsonl"
    assert model_cli(["classify", str(bad), "--model", str(tiny_dir), "--device", "cpu", "-o", str(out)]) == 1
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r.get("id") for r in rows] == ["a", None, "c"] and "error" in rows[1]
    assert "1 error line" in capsys.readouterr().err

    assert model_cli(["classify", str(tmp_path / "missing.jsonl"), "--model", str(tiny_dir)]) == 2


# -- per-company sentiment (issue 22): the entities of an output line -------------------------------------
@pytest.fixture(scope="module")
def tiny_entity_dir(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ent") / "tiny-ent", seed=5, entity=True)[0]


def _classify(engine, lines):
    out = io.StringIO()
    classify_lines(engine, [json.dumps(x) for x in lines], out)
    return [json.loads(x) for x in out.getvalue().splitlines()]


def test_entities_one_per_target_then_per_linked_ticker(tiny_entity_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("FINSENT_ONNX_CACHE", str(tmp_path / "onnx"))
    engine = load_engine(tiny_entity_dir, "cpu", cpu_path="onnx", warmup=False)
    rows = _classify(engine, [
        {"id": "many", "text": "Apple wins patent case against Samsung; Samsung shares fall",
         "targets": ["samsung", "Ryanair"]},
        {"id": "none", "text": "Fed holds rates steady"},
        {"id": "one", "text": "Walmart cuts its forecast"},
        {"id": "given", "text": "Walmart cuts forecast, Target gains", "targets": ["Target"]},
    ])
    many, none, one, given = rows
    assert [(e["name"], e["ticker"], e["start"], e["end"]) for e in many["entities"]] == [
        ("samsung", None, 31, 38), ("Ryanair", "RYAAY", None, None), ("Apple", "AAPL", 0, 5)]
    absent = many["entities"][1]  # not in the text: the headline's sentiment
    assert (absent["sentiment"], absent["p_negative"]) == (many["sentiment"], many["p_negative"])
    assert many["entities"][0]["p_negative"] != many["entities"][2]["p_negative"]
    assert none["entities"] == [] and none["tickers"] == []
    assert [e["ticker"] for e in one["entities"]] == ["WMT"]
    # a target that is a linked company is that company's entry, not a second one
    assert [(e["name"], e["ticker"]) for e in given["entities"]] == [("Target", "TGT"), ("Walmart", "WMT")]
    for row in rows:
        for e in row["entities"]:
            assert set(e) == {"name", "ticker", "start", "end", "sentiment", "p_negative", "p_neutral", "p_positive",
                              "sentiment_score"}
            assert e["sentiment_score"] == pytest.approx(e["p_positive"] - e["p_negative"], abs=2e-6)


def test_entity_requests_pool_repeated_mentions_and_resolve_symbols():
    from model.classify import entity_requests
    from stream.linking import default_linker

    linker = default_linker()
    text = "Apple beats estimates; Apple's services grow as $AAPL hits a record"
    reqs = entity_requests(text, ["AAPL"], linker.link(text), linker)
    assert [(r.name, r.ticker) for r in reqs] == [("AAPL", "AAPL")]  # the symbol names the linked company
    reqs = entity_requests(text, [], linker.link(text), linker)
    assert len(reqs) == 1 and reqs[0].ticker == "AAPL"
    assert [text[a:b] for a, b in reqs[0].spans][:2] == ["Apple", "Apple"] and len(reqs[0].spans) >= 2


def test_the_shipped_model_scores_each_company_of_a_text_with_opposite_fortunes(capsys, monkeypatch):
    """The shipped checkpoint's entity head (issue 22) on the issue's examples, through finsent classify:
    the headline-level sentiment is one, the companies' are not."""
    lines = [{"id": 1, "text": "Apple wins patent case against Samsung; Samsung shares fall",
              "targets": ["Apple", "Samsung"]},
             {"id": 2, "text": "Walmart cuts forecast, Target gains"}]
    engine = load_engine(None, "cpu", warmup=False)
    assert engine.entity_head
    apple, walmart = _classify(engine, lines)
    ents = {e["name"]: e for e in apple["entities"]}
    assert ents["Apple"]["sentiment"] == "positive" and ents["Samsung"]["sentiment"] == "negative"
    ents = {e["ticker"]: e for e in walmart["entities"]}
    assert ents["WMT"]["sentiment"] == "negative"
    assert ents["TGT"]["sentiment_score"] > ents["WMT"]["sentiment_score"] + 0.5
