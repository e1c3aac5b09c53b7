"""The one scope-label function and its two deliberate styles (charts vs alert texts)."""

from __future__ import annotations

import pytest

from stream.base.labels import SCOPE_KINDS, scope_label


@pytest.mark.parametrize(("kind", "scope", "chart", "alert"), [
    ("ticker", "AAPL", "ticker AAPL", "AAPL"),
    ("topic", "Fed, Central Banks", "topic Fed, Central Banks", "Fed, Central Banks (topic)"),
    ("all", "all", "all news", "all news"),
])
def test_chart_and_alert_styles(kind, scope, chart, alert):
    assert scope_label(kind, scope) == chart == scope_label(kind, scope, "chart")
    assert scope_label(kind, scope, "alert") == alert


def test_every_scope_kind_is_covered():
    assert set(SCOPE_KINDS) == {"ticker", "topic", "all"}
