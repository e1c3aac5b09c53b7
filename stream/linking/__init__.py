"""Entity linking: company names, brands, cashtags and exchange tags -> listed tickers.

``default_linker()`` loads the shipped table (``aliases.tsv``, ``symbols.tsv``)
once per process; ``Linker.from_files(user_csv=...)`` adds the user's aliases.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from stream.linking.matcher import Link, Linker, read_user_aliases

__all__ = ["Link", "Linker", "default_linker", "linker_for", "read_user_aliases"]


@lru_cache(maxsize=1)
def default_linker() -> Linker:
    return Linker.from_files()


@lru_cache(maxsize=8)
def linker_for(user_csv: str | None = None) -> Linker:
    """The shipped linker, extended/overridden by the user's alias CSV when given."""
    if not user_csv:
        return default_linker()
    return Linker.from_files(user_csv=Path(user_csv))
