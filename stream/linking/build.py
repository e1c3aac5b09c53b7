"""Build the shipped alias table from the SEC reference and the curated file.

``finsent tickers build`` runs :func:`build_table` and writes ``aliases.tsv``
and ``symbols.tsv`` beside this module; both are committed, so a fresh clone
links names without any download.

* ``symbols.tsv``: ``symbol<TAB>canonical<TAB>exchange<TAB>rank`` for every
  listed symbol; share classes of one company (same SEC CIK) and curated old
  symbols fold to one canonical ticker; ``rank`` is the SEC list's order
  (largest first), used by the ``topN`` watchlists.
* ``aliases.tsv``: ``alias<TAB>ticker<TAB>kind<TAB>context`` (kinds in
  ``curated.tsv``'s header).

A generated one-word name that is also an everyday English word ("Strategy",
"Sea", "Flex") is marked ``S`` (strict: only with a positive sign).  Everyday
means: in the built-in list, used in lower case in the given corpus (the
labelled news texts under ``../shared/data``, when present), or frequent in
English by ``wordfreq`` (a build-time tool from the ``test`` extra; the
generated table is committed, so running needs neither).
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from stream.linking.matcher import NOT_SYMBOLS
from stream.linking.names import normalize_name, short_names
from stream.linking.watchlist import INDEX_FILE, INDEXES

HERE = Path(__file__).resolve().parent
CURATED = HERE / "curated.tsv"
ALIASES = HERE / "aliases.tsv"
SYMBOLS = HERE / "symbols.tsv"
DATA = HERE.parents[1].parent / "shared" / "data"  # ../shared/data next to the project root
DEFAULT_SEC = DATA / "reference" / "sec_company_tickers.csv"
DEFAULT_CORPUS = (
    DATA / "sentiment" / "fpb_train.csv",
    DATA / "sentiment" / "tfns_train.csv",
    DATA / "topic" / "topic_train.csv",
)
KINDS = "NCASXFDGH"
# first words that make a generated short name unusable on its own ("Trump Media" -> not "Trump")
_NO_SHORT = {
    "american", "united", "first", "general", "national", "international", "global", "new", "north", "south",
    "east", "west", "central", "pacific", "atlantic", "royal", "standard", "western", "eastern", "southern",
    "northern", "great", "china", "us", "u.s.", "trump", "bank", "banco", "public", "federal", "select",
    "world", "capital", "summit", "mid", "big", "old", "golden", "silver", "blue", "green", "red", "black",
    "white", "texas", "canadian", "mexican", "japan", "korea", "india", "brazil", "hong", "digital", "smart",
}
EVERYDAY = {
    "strategy", "sea", "flex", "nu", "block", "target", "visa", "shell", "gap", "snap", "delta", "match",
    "meta", "progressive", "carnival", "apple", "amazon", "oracle", "ford", "united", "american", "southern",
    "energy", "global", "capital", "vision", "alpha", "beta", "core", "focus", "target", "sun", "well",
    "reliance", "progress", "advance", "express", "dollar", "pilgrim", "edge", "spirit", "frontier",
    "genesis", "liberty", "harmony", "evolution", "legacy", "unity", "future", "trade", "trust", "first",
    "community", "pioneer", "crown", "summit", "peak", "pinnacle", "guardian", "sentinel", "horizon",
}


def word_frequency(word: str) -> float:
    """Zipf frequency of an English word (wordfreq, build time only); 0 when wordfreq is absent."""
    try:  # optional, and only needed when building (200 ms to import)
        from wordfreq import zipf_frequency
    except ImportError:  # the corpus check and the curated list still apply
        return 0.0
    return zipf_frequency(word, "en")


def index_members(symbols: dict[str, tuple[str, str, int]]) -> dict[str, list[str]] | None:
    """Constituents of :data:`INDEXES` from ``pytickersymbols`` (MIT; its bundled data, no download),
    as canonical tickers of the reference; None when pytickersymbols is not installed (build time only)."""
    try:  # optional, build time only
        from pytickersymbols import PyTickerSymbols
    except ImportError:
        return None
    source = PyTickerSymbols()
    out = {}
    for key, name in INDEXES.items():
        members = set()
        for stock in source.get_stocks_by_index(name):
            sym = str(stock.get("symbol") or "").upper().replace(".", "-")
            if sym in symbols:
                members.add(symbols[sym][0])
        out[key] = sorted(members)
    return out


@dataclass
class Table:
    aliases: list[tuple[str, str, str, str]]  # alias, ticker, kind, context
    symbols: list[tuple[str, str, str, int]]  # symbol, canonical, exchange, rank
    indexes: dict[str, list[str]] | None = None  # named watchlists (None: pytickersymbols absent)


def read_sec(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if r.get("ticker") and r.get("name")]


def read_curated(path: Path = CURATED) -> list[tuple[str, str, str, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 3 or parts[2] not in KINDS:
            raise ValueError(f"{path}: bad line {line!r}")
        out.append((parts[0].strip(), parts[1].strip(), parts[2], parts[3].strip() if len(parts) > 3 else ""))
    return out


def lowercase_words(paths: Iterable[Path]) -> Counter:
    """How often each word appears in lower case (not first in its sentence) in a corpus."""
    counts: Counter = Counter()
    word = re.compile(r"(?<![\w.$@#])([a-z][a-z\-]+)(?![\w])")
    for p in paths:
        if not p.is_file():
            continue
        with open(p, newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                if row:
                    counts.update(word.findall(row[0]))
    return counts


def build_table(sec_path: Path = DEFAULT_SEC, curated_path: Path = CURATED,
                corpus: Iterable[Path] = DEFAULT_CORPUS) -> Table:
    sec = read_sec(sec_path)
    curated = read_curated(curated_path)
    common = lowercase_words(corpus)
    everyday = EVERYDAY | {w for w, n in common.items() if n >= 2}

    canonical_by_cik: dict[str, str] = {}
    symbols: dict[str, tuple[str, str, int]] = {}
    for rank, r in enumerate(sec, start=1):
        t = r["ticker"].strip().upper()
        cik = (r.get("cik") or "").strip() or t
        canon = canonical_by_cik.setdefault(cik, t)
        symbols.setdefault(t, (canon, (r.get("exchange") or "").strip(), rank))
    listed = set(symbols)
    for ticker, alias, kind, _ in curated:
        if kind == "F" and ticker in listed:
            canon = symbols[ticker][0]
            old = alias.upper()
            if old not in symbols:
                symbols[old] = (canon, symbols[ticker][1], symbols[ticker][2])
            else:  # a share class the SEC lists separately
                symbols[old] = (canon, symbols[old][1], symbols[old][2])

    def canon(t: str) -> str | None:
        s = symbols.get(t.upper())
        return s[0] if s else None

    drops = {(canon(t), a.lower()) for t, a, k, _ in curated if k == "D"}
    aliases: dict[tuple[str, str], tuple[str, str, str, str]] = {}
    curated_names = set()
    for t, a, k, ctx in curated:
        if k in "FD":
            continue
        if k == "X":
            aliases[(a.lower(), "-")] = (a, "-", "X", "")
            curated_names.add(a.lower())
            continue
        c = canon(t)
        if c is None:
            continue  # no longer listed
        aliases[(a.lower(), c)] = (a, c, k, ctx)
        curated_names.add(a.lower())

    for r in sec:
        c = canon(r["ticker"])
        if c is None:
            continue
        exchange = (r.get("exchange") or "").strip()
        rank = symbols[r["ticker"].strip().upper()][2]
        full = normalize_name(r["name"])
        forms = [full]
        if rank <= 3000:
            forms += [f for f in short_names(full) if f.split()[0].lower() not in _NO_SHORT or " " in f]
        forms += [f.replace("-", " ") for f in forms if "-" in f]  # "Snap-on" is also written "Snap On"
        for form in forms:
            low = form.lower()
            if len(re.sub(r"[^a-z]", "", low)) < 3 or low in curated_names or (c, low) in drops:
                continue
            single = " " not in form
            if single and form.isupper() and len(form) <= 5:
                # an acronym name ("BHP", "UBS"): exact case, only for the larger issuers, never a word
                if rank <= 500 and len(form) >= 3 and low not in everyday and form not in NOT_SYMBOLS:
                    aliases.setdefault((low, c), (form, c, "C", ""))
                continue
            if single:
                z = word_frequency(low)
                if low in everyday or z >= 4.0 or (rank > 500 and z >= 3.0 and exchange == "OTC"):
                    if rank <= 1000 and exchange != "OTC":
                        aliases.setdefault((low, c), (form, c, "S", ""))
                    continue
                # a one-word generated name: never inside a longer capitalised name; a smaller issuer
                # whose name is also a familiar word only with a positive sign ("Viking shares")
                aliases.setdefault((low, c), (form, c, "H" if rank > 500 and z >= 3.0 else "G", ""))
                continue
            if not single and all(w.lower() in everyday or w.lower() in ("of", "and", "&", "the") for w in form.split()) \
                    and rank > 1000:
                continue  # "Global Industrial Partners"-like names of small issuers: too generic
            if exchange == "OTC" and single and rank > 1500:
                continue
            aliases.setdefault((low, c), (form, c, "N", ""))
    # an alias claimed by several companies is ambiguous: keep the largest (first in SEC order)
    by_alias: dict[str, list[tuple[str, str, str, str]]] = {}
    for (low, _), entry in aliases.items():
        by_alias.setdefault(low, []).append(entry)
    out = []
    for low, entries in by_alias.items():
        if len(entries) > 1:
            entries.sort(key=lambda e: (e[1] == "-", symbols.get(e[1], ("", "", 10**9))[2]))
            cur = [e for e in entries if e[0].lower() in curated_names and e[2] != "N" or e[1] == "-"]
            entries = entries[:1] if not cur else cur[:1]
        out.extend(entries)
    out.sort(key=lambda e: (e[1], e[0].lower()))
    syms = sorted(((s, c, ex, rk) for s, (c, ex, rk) in symbols.items()), key=lambda x: x[3])
    return Table(aliases=out, symbols=syms, indexes=index_members(symbols))


def write_table(table: Table, aliases_path: Path = ALIASES, symbols_path: Path = SYMBOLS,
                index_path: Path = INDEX_FILE) -> None:
    head = "# generated by 'finsent tickers build' from the SEC reference and curated.tsv: do not edit\n"
    with open(aliases_path, "w", encoding="utf-8", newline="\n") as f:
        f.write(head)
        for a, t, k, ctx in table.aliases:
            f.write(f"{a}\t{t}\t{k}\t{ctx}\n")
    with open(symbols_path, "w", encoding="utf-8", newline="\n") as f:
        f.write(head)
        for s, c, ex, rk in table.symbols:
            f.write(f"{s}\t{c}\t{ex}\t{rk}\n")
    if table.indexes is not None:  # without pytickersymbols the committed index lists stay as they are
        with open(index_path, "w", encoding="utf-8", newline="\n") as f:
            f.write(head.replace("from the SEC reference and curated.tsv", "from pytickersymbols' index lists"))
            for key in sorted(table.indexes):
                for t in table.indexes[key]:
                    f.write(f"{key}\t{t}\n")
