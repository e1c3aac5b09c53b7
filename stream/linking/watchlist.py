"""The ``watchlist`` setting: which tickers make trends and alerts.

* ``all`` (default, or empty): every linked ticker;
* ``sp500``, ``sp100``, ``nasdaq100``, ``dow30``: an index's constituents (``indexes.tsv``, generated
  by ``finsent tickers build`` from pytickersymbols' bundled lists, MIT; committed);
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

from stream.base.errors import UserError
from stream.linking.matcher import symbol_ranks

# named watchlists: index -> pytickersymbols' name (US indexes only: the reference lists US listings);
# their members are in INDEX_FILE, written by 'finsent tickers build' (stream/linking/build.py)
INDEXES = {"sp500": "S&P 500", "sp100": "S&P 100", "nasdaq100": "NASDAQ 100", "dow30": "DOW JONES"}
INDEX_FILE = Path(__file__).resolve().parent / "indexes.tsv"


def load_watchlist(spec: str | None) -> frozenset[str] | None:
    """The watched tickers, or None for all."""
    if spec is None or not str(spec).strip() or str(spec).strip().lower() == "all":
        return None
    spec = str(spec).strip()
    if spec.lower() in INDEXES:
        members = frozenset(line.split("\t")[1].strip() for line in INDEX_FILE.read_text(encoding="utf-8").splitlines()
                            if line and not line.startswith("#") and line.split("\t")[0] == spec.lower())
        if not members:
            raise UserError(f"watchlist: no members of {spec!r} in {INDEX_FILE} (run 'finsent tickers build')")
        return members
    m = re.fullmatch(r"top(\d+)", spec.lower())
    if m:
        n = int(m.group(1))
        return frozenset(t for t, rank in symbol_ranks().items() if rank <= n)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise UserError(f"watchlist: {spec!r} is neither 'all', an index ({', '.join(INDEXES)}), 'topN' "
                        "nor a readable file of tickers")
    tickers = set()
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if not row or not row[0].strip() or row[0].strip().startswith("#"):
                continue
            t = row[0].strip().lstrip("$").upper()
            if t != "TICKER":
                tickers.add(t)
    return frozenset(tickers)
