"""The label vocabulary shared by every package: topics, sentiments, scope kinds.

The topic ids are those of the Twitter Financial News topic data set (see
``../shared/data/README.md``); the sentiment order is the model's own
(negative, neutral, positive).  The label maps of training data sets live in
``model/labels.py``.
"""

from __future__ import annotations

import re
from typing import Literal

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


def scope_label(scope_kind: str, scope: str, style: Literal["chart", "alert"] = "chart") -> str:
    """How a scope is named: 'all news' for the whole stream; otherwise, by ``style``,

    * ``chart`` (chart titles, legends): 'ticker AAPL', 'topic Macro';
    * ``alert`` (alert titles and texts, which receivers filter on): 'AAPL', 'Macro (topic)'.
    """
    if style == "alert":
        return scope if scope_kind == "ticker" else f"{scope} (topic)" if scope_kind == "topic" else "all news"
    return "all news" if scope_kind == "all" else f"{scope_kind} {scope}"


def slug(text: str) -> str:
    """'Fed, Central Banks' -> 'fed-central-banks' (apprise tags)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
