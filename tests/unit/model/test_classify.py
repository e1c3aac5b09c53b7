"""finsent classify: JSON lines in and out, bad lines, order, constant memory."""

import io
import json

import pytest

from model.classify import classify_lines, parse_line
from model.cli import main as model_cli
from model.engine import Prediction
from tests.support.tiny_model import make_tiny_checkpoint


class StubEngine:
    """Scores by text length; records the size of every predict() call."""

    model_version = "stub-1"

    def __init__(self):
        self.calls = []

    def predict(self, texts):
        self.calls.append(len(texts))
        out = []
        for t in texts:
            k = len(t) % 20
            out.append(Prediction(topic=f"t{k}", topic_id=k, topic_score=0.5, sentiment="neutral",
                                  p_negative=0.25, p_neutral=0.5, p_positive=0.25, sentiment_score=0.0))
        return out


def test_parse_line():
    assert parse_line(b'{"id": 7, "text": "Apple up"}') == (7, "Apple up", None)
    assert parse_line('{"title": "Apple up", "summary": "On iPhone sales"}')[1] == "Apple up. On iPhone sales"
    assert parse_line('{"text": "  ", "title": "fallback"}')[1] == "fallback"
    for raw, msg in [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"id": "a"}', "no text"),
        (b'{"text": 5}', "must be a string"),
        (b'{"title": ["x"]}', "must be a string"),
        (b'{"text": "\xff\xfe"}', "not UTF-8"),
    ]:
        ident, text, error = parse_line(raw)
        assert text is None and msg in error, (raw, error)
    assert parse_line(b'{"id": "a"}')[0] == "a"  # the id is echoed with the error


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
                       "p_positive", "sentiment_score", "model_version", "tickers"}
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
