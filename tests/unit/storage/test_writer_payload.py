"""The writer's batch payload: one JSON array that json_to_recordset reads (storage/writer.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, strategies as st

from storage.writer import COLUMNS, PREPARE_SQL, WRITE_SQL, ArticleRow, _clean, _payload


def row(**kw) -> ArticleRow:
    base = dict(id="a1", published_at=datetime(2024, 5, 1, 10, tzinfo=UTC), source="s", url=None,
                title="Acme beats", tickers=["ACME", "ACME", ""], topic="Earnings", topic_score=0.9,
                sentiment="positive", p_negative=0.1, p_neutral=0.2, p_positive=0.7, sentiment_score=0.6,
                model_version="v", extra={"summary": "x", 3: "int key"}, ticker_links=[{"ticker": "ACME"}])
    base.update(kw)
    return ArticleRow(**base)


def test_payload_carries_every_column_and_the_json_columns_as_text():
    (obj,) = json.loads(_payload([_clean(row())]))
    assert list(obj) == list(COLUMNS)
    assert obj["tickers"] == ["ACME"] and obj["story_id"] == "a1" and obj["story_first"] is True
    assert json.loads(obj["extra"]) == {"summary": "x", "3": "int key"}  # made by json, as before
    assert json.loads(obj["ticker_links"]) == [{"ticker": "ACME"}]
    assert datetime.fromisoformat(obj["published_at"]) == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_non_finite_probabilities_travel_as_what_float8_reads_and_nul_is_refused_client_side():
    (obj,) = json.loads(_payload([_clean(row(p_neutral=float("nan"), p_positive=float("inf")))]))
    assert (obj["p_neutral"], obj["p_positive"]) == ("NaN", "Infinity")
    with pytest.raises(ValueError, match="NUL"):
        _payload([_clean(row(title="a \x00 b"))])
    with pytest.raises(ValueError, match="NUL"):
        _payload([_clean(row(tickers=["A\x00"]))])
    # NaN inside extra stays invalid JSON text: jsonb refuses that row, as it did before
    (obj,) = json.loads(_payload([_clean(row(extra={"x": float("nan")}))]))
    assert "NaN" in obj["extra"]


def test_the_statement_is_prepared_with_one_parameter():
    assert WRITE_SQL.count("%s") == 1 and "json_to_recordset(%s::json)" in WRITE_SQL
    assert PREPARE_SQL.startswith("PREPARE finsent_write_batch (text) AS") and "%s" not in PREPARE_SQL


@given(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=80),
       st.floats(allow_nan=False, allow_infinity=False))
def test_text_and_floats_round_trip_exactly(title, p):
    (obj,) = json.loads(_payload([_clean(row(title=title or "t", p_negative=p))]))
    assert obj["title"] == (title or "t") and obj["p_negative"] == p
