"""Entity linking: company names, brands, cashtags and exchange tags -> listed tickers.

``default_linker()`` is the shipped table, built once per process;
``linker_for(aliases_csv, watchlist)`` adds the user's aliases or companies and a watchlist
(see :func:`stream.linking.watchlist.load_watchlist`).
"""

from __future__ import annotations

from functools import lru_cache

from stream.linking.matcher import Link, Linker, UserCompany, read_user_aliases, read_user_companies
from stream.linking.watchlist import load_watchlist

__all__ = ["Link", "Linker", "UserCompany", "default_linker", "linker_for", "read_user_aliases",
           "read_user_companies"]


@lru_cache(maxsize=1)
def default_linker() -> Linker:
    return Linker()


@lru_cache(maxsize=8)
def linker_for(user_csv: str | None = None, watchlist: str | None = None) -> Linker:
    """The shipped linker, extended by the user's alias / companies CSV (``ticker,name[,from,until]``)
    and restricted by a watchlist setting."""
    tickers = load_watchlist(watchlist)
    if not user_csv and tickers is None:
        return default_linker()
    users = read_user_companies(user_csv) if user_csv else None
    return Linker(users, watchlist=tickers)
