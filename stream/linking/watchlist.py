"""The ``watchlist`` setting: which tickers make trends and alerts.

* ``all`` (default, or empty): every linked ticker;
* ``topN`` (e.g. ``top100``, ``top500``): the N largest issuers of the shipped SEC
  reference (its order is by size, largest first);
* a path to a file of tickers: a CSV whose first column is the ticker (header
  ``ticker`` optional), or one ticker a line; ``#`` starts a comment.

Mentions outside the watchlist are still stored (in ``articles.ticker_links``,
marked ``"watch": false``) but not in ``articles.tickers``, so they make no
ticker trend or alert.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from stream.errors import UserError


def load_watchlist(spec: str | None) -> frozenset[str] | None:
    """The watched tickers, or None for all."""
    if spec is None or not str(spec).strip() or str(spec).strip().lower() == "all":
        return None
    spec = str(spec).strip()
    m = re.fullmatch(r"top(\d+)", spec.lower())
    if m:
        from stream.linking.matcher import symbol_ranks

        n = int(m.group(1))
        return frozenset(t for t, rank in symbol_ranks().items() if rank <= n)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise UserError(f"watchlist: {spec!r} is neither 'all', 'topN' nor a readable file of tickers")
    tickers = set()
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if not row or not row[0].strip() or row[0].strip().startswith("#"):
                continue
            t = row[0].strip().lstrip("$").upper()
            if t != "TICKER":
                tickers.add(t)
    return frozenset(tickers)
