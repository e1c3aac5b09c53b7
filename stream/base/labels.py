"""The label vocabulary shared by every package: topics, sentiments, scope kinds.

The topic ids are those of the Twitter Financial News topic data set (see
``../shared/data/README.md``); the sentiment order is the model's own
(negative, neutral, positive).  The label maps of training data sets live in
``model/labels.py``.
"""

from __future__ import annotations

import re

TOPICS: tuple[str, ...] = (
    "Analyst Update",
    "Fed, Central Banks",
    "Company, Product News",
    "Treasuries, Corporate Debt",
    "Dividend",
    "Earnings",
    "Energy, Oil",
    "Financials",
    "Currencies",
    "General News, Opinion",
    "Gold, Metals, Materials",
    "IPO",
    "Legal, Regulation",
    "M&A, Investments",
    "Macro",
    "Markets",
    "Politics",
    "Personnel Change",
    "Stock Commentary",
    "Stock Movement",
)
SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")

# Scopes of the minute buckets and of alerts (sentiment_minute.scope_kind).
SCOPE_KINDS: tuple[str, ...] = ("ticker", "topic", "all")


def scope_label(scope_kind: str, scope: str) -> str:
    """How a chart names a scope: 'ticker AAPL', 'topic Macro', 'all news'."""
    if scope_kind == "all":
        return "all news"
    return f"{scope_kind} {scope}"


def alert_scope_label(scope_kind: str, scope: str) -> str:
    """How an alert names a scope: 'AAPL', 'Macro (topic)', 'all news'."""
    if scope_kind == "ticker":
        return scope
    if scope_kind == "topic":
        return f"{scope} (topic)"
    return "all news"


def slug(text: str) -> str:
    """'Fed, Central Banks' -> 'fed-central-banks' (apprise tags)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
