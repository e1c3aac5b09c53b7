"""Issue 16: the per-stage breakdown, the null model, and the orjson news.scored encoding."""

import json
import time
from datetime import UTC, datetime
from types import SimpleNamespace

from hypothesis import given, settings, strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from model.null import NULL_MODEL_VERSION, NullEngine, fixed_predictions
from storage.writer import ArticleRow
from stream.core.pipeline import STAGES, BatchProcessor, RawRecord, scored_message
from stream.metrics import WorkerMetrics
from tests.support.fakes import FakeWriter, msg


class SlowLinker:
    """A linker that takes measurable time, to see it counted as 'link' and not as parsing."""

    def link(self, text, at=None):
        time.sleep(0.002)
        return []

    def extract(self, text):
        return [t for _, t in self.link(text)]

    def canonical(self, t):
        return t

    def in_watchlist(self, t):
        return True


class SlowTokenizer:
    """A ``tokenizers.Tokenizer`` stand-in (``encode_batch_fast``) that takes measurable time."""

    def encode_batch_fast(self, texts, add_special_tokens=True):
        time.sleep(0.01)
        return [SimpleNamespace(ids=[101, 102]) for _ in texts]


def test_batch_reports_every_stage_and_metrics_count_them():
    engine = NullEngine(SlowTokenizer())
    proc = BatchProcessor(engine, FakeWriter(), extractor=SlowLinker())
    res = proc.process([RawRecord(msg(i), topic="raw", partition=0, offset=i) for i in range(5)])
    assert len(res.inserted) == 5
    assert res.link_s >= 5 * 0.002 * 0.9  # five texts linked
    assert res.tokenize_s >= 0.009 and res.infer_s < res.tokenize_s  # tokenizer time is not inference
    assert res.parse_s >= 0 and res.build_s >= 0 and res.db_s >= 0
    reg = CollectorRegistry()
    m = WorkerMetrics(registry=reg)
    res.consume_s, res.produce_s, res.ack_s = 0.5, 0.25, 0.125
    m.observe(res, lag=0, log_every=100)
    text = generate_latest(reg).decode()
    for stage in STAGES:
        assert f'finsent_stage_seconds_total{{stage="{stage}"}}' in text
    assert 'finsent_stage_seconds_total{stage="consume"} 0.5' in text
    assert 'finsent_stage_seconds_total{stage="ack"} 0.125' in text


def test_null_engine_fixed_predictions_in_input_order():
    eng = NullEngine()
    preds = eng.predict([f"t{i}" for i in range(10)])
    cycle = fixed_predictions()
    assert preds == [cycle[i % len(cycle)] for i in range(10)]
    assert all(abs(p.p_negative + p.p_neutral + p.p_positive - 1) < 1e-9 for p in cycle)
    assert all(abs(p.sentiment_score - (p.p_positive - p.p_negative)) < 1e-9 for p in cycle)
    assert eng.model_version == NULL_MODEL_VERSION and eng.last_tokenize_s == 0.0
    assert NullEngine(SlowTokenizer()).model_version == NULL_MODEL_VERSION + "+tokenize"
    try:
        eng.predict("one string")
    except TypeError:
        pass
    else:
        raise AssertionError("a bare string must be refused")


def _old_scored_message(row) -> bytes:
    """The encoder before issue 16 (json.dumps), to compare the orjson one with."""
    from stream.messages.raw_message import format_time

    return json.dumps({
        "id": row.id, "published_at": format_time(row.published_at), "title": row.title,
        "source": row.source, "url": row.url, "tickers": list(row.tickers), "topic": row.topic,
        "topic_score": round(row.topic_score, 6), "sentiment": row.sentiment,
        "p_negative": round(row.p_negative, 6), "p_neutral": round(row.p_neutral, 6),
        "p_positive": round(row.p_positive, 6), "sentiment_score": round(row.sentiment_score, 6),
        "model_version": row.model_version,
    }, ensure_ascii=False).encode("utf-8")


texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)
probs = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(title=texts, source=st.none() | texts, url=st.none() | texts, tickers=st.lists(texts, max_size=4),
       p=st.tuples(probs, probs, probs, probs), ts=st.datetimes(timezones=st.just(UTC)))
def test_scored_message_decodes_to_what_the_json_encoder_wrote(title, source, url, tickers, p, ts):
    row = ArticleRow(id="x1", published_at=ts, source=source, url=url, title=title, tickers=tickers,
                     topic="Earnings", topic_score=p[0], sentiment="neutral", p_negative=p[1], p_neutral=p[2],
                     p_positive=p[3], sentiment_score=p[3] - p[1], model_version="v")
    assert json.loads(scored_message(row)) == json.loads(_old_scored_message(row))


def test_scored_message_keeps_non_ascii_as_utf8():
    row = ArticleRow(id="é", published_at=datetime(2024, 5, 1, tzinfo=UTC), source=None, url=None,
                     title="Société Générale ↑", tickers=["GLE.PA"], topic="Markets", topic_score=0.5,
                     sentiment="positive", p_negative=0.1, p_neutral=0.2, p_positive=0.7, sentiment_score=0.6,
                     model_version="v")
    raw = scored_message(row)
    assert "Société Générale ↑".encode() in raw
    assert json.loads(raw)["published_at"] == "2024-05-01T00:00:00Z"
