"""Build the shipped alias table from the SEC reference and the curated files.

``finsent tickers build`` runs :func:`build_table` and writes ``aliases.tsv``
and ``symbols.tsv`` beside this module; both are committed, so a fresh clone
links names without any download.

* ``symbols.tsv``: ``symbol<TAB>canonical<TAB>exchange<TAB>rank`` for every
  listed symbol; share classes of one company (same SEC CIK) and curated old
  symbols fold to one canonical ticker; ``rank`` is the SEC list's order
  (largest first), used by the ``topN`` watchlists.
  A former symbol of ``history.tsv`` that another company holds today, or that
  has an end date, adds ``<TAB>since<TAB>until``: it maps to its company only in
  that period.
* ``aliases.tsv``: ``alias<TAB>ticker<TAB>kind<TAB>context<TAB>since<TAB>until<TAB>entity``
  (kinds in ``curated.tsv``'s header; ``since``/``until`` the period of a former
  name; an empty ticker is an unlisted entity named ``entity``).
* ``ciks.tsv``: ``cik<TAB>ticker<TAB>name``: the SEC's company id (no leading zeros),
  the company's canonical ticker and its name as people write it (the legal name
  normalised): SEC filings name their filer by CIK (rule ``cik``).

The curated inputs beside this module, each row with its source:

* ``curated.tsv``: names, brands, acronyms, everyday-word names with context rules;
* ``history.tsv``: point-in-time former names and symbols of listed companies
  (``ticker<TAB>name<TAB>kind<TAB>since<TAB>until<TAB>source[<TAB>context]``);
  a company that took a name another company used before gets ``since`` set to the
  end of that use, so the name does not capture old headlines;
* ``entities.tsv``: foreign issuers and other companies with no US listing of their
  own (``entity<TAB>names<TAB>country<TAB>us_line<TAB>since<TAB>until<TAB>source``):
  their names link to the US line (an ADR or OTC symbol) when the SEC list has it,
  else to the unlisted entity; a name ending in ``*`` is an everyday word (kind S);
* the user's companies files (``--companies``, :func:`stream.linking.matcher.read_user_companies`).

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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from stream.linking.matcher import NOT_SYMBOLS, AliasRow, UserCompany, name_key
from stream.linking.names import company_name, normalize_name, short_names
from stream.linking.watchlist import INDEX_FILE, INDEXES

HERE = Path(__file__).resolve().parent
CURATED = HERE / "curated.tsv"
HISTORY = HERE / "history.tsv"
ENTITIES = HERE / "entities.tsv"
ALIASES = HERE / "aliases.tsv"
SYMBOLS = HERE / "symbols.tsv"
CIKS = HERE / "ciks.tsv"
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
    "energy", "global", "capital", "vision", "alpha", "beta", "core", "focus", "sun", "well",
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


# words of a fund's name: its family name ("DoubleLine", "Nuveen") is not the fund, so no short names
_FUNDISH = {"fund", "funds", "etf", "etfs", "etn", "portfolio", "municipal", "muni"}


@dataclass
class Table:
    aliases: list[AliasRow]
    symbols: list[tuple[str, str, str, int, str, str]]  # symbol, canonical, exchange, rank, since, until
    indexes: dict[str, list[str]] | None = None  # named watchlists (None: pytickersymbols absent)
    ciks: list[tuple[int, str, str]] = field(default_factory=list)  # SEC CIK, canonical ticker, readable name


@dataclass(frozen=True)
class Former:
    """A row of history.tsv: a former name (or, kind F, symbol) of a listed company, with its period."""

    ticker: str
    name: str
    kind: str
    since: str
    until: str
    source: str
    context: str = ""


@dataclass(frozen=True)
class Entity:
    """A row of entities.tsv: a company with no US listing of its own, by the names the news uses."""

    entity: str
    names: tuple[str, ...]
    country: str
    us_line: str  # ADR / OTC symbol, "-" for none
    since: str
    until: str
    source: str


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


def _tsv_rows(path: Path, min_cols: int) -> Iterable[tuple[int, list[str]]]:
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) < min_cols:
            raise ValueError(f"{path}:{n}: expected {min_cols} tab-separated columns: {line!r}")
        yield n, parts


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _period(path: Path, n: int, since: str, until: str) -> tuple[str, str]:
    since, until = ("" if d == "-" else d for d in (since, until))
    for d in (since, until):
        if d and not _DAY.fullmatch(d):
            raise ValueError(f"{path}:{n}: {d!r} is not a date YYYY-MM-DD")
    if since and until and until <= since:
        raise ValueError(f"{path}:{n}: the period ends before it starts")
    return since, until


def read_history(path: Path = HISTORY) -> list[Former]:
    """Former names and symbols with their periods; every row must name its source."""
    out = []
    for n, p in _tsv_rows(path, 6):
        if p[2] not in KINDS or p[2] in "DX" or not p[5]:
            raise ValueError(f"{path}:{n}: bad kind or no source: {p!r}")
        since, until = _period(path, n, p[3], p[4])
        out.append(Former(p[0], p[1], p[2], since, until, p[5], p[6] if len(p) > 6 else ""))
    return out


def read_entities(path: Path = ENTITIES) -> list[Entity]:
    """Foreign issuers and other entities with no US listing of their own; every row names its source."""
    out = []
    for n, p in _tsv_rows(path, 7):
        names = tuple(x.strip() for x in p[1].split("|") if x.strip())
        if not names or not p[6]:
            raise ValueError(f"{path}:{n}: no names or no source: {p!r}")
        since, until = _period(path, n, p[4], p[5])
        out.append(Entity(p[0], names, p[2], p[3], since, until, p[6]))
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


def _entity_kind(name: str) -> str:
    """The kind of a hand-listed entity name: several words a name (N), an acronym exact-case (C),
    another single word as a large issuer's (G); ``*`` marks an everyday word (S: "Orange*")."""
    if name.endswith("*"):
        return "S"
    if " " in name:
        return "N"
    return "C" if name.isupper() and len(name) <= 5 else "G"


def build_table(sec_path: Path = DEFAULT_SEC, curated_path: Path = CURATED,
                corpus: Iterable[Path] = DEFAULT_CORPUS, *, history_path: Path | None = HISTORY,
                entities_path: Path | None = ENTITIES, companies: Iterable[UserCompany] = ()) -> Table:
    sec = read_sec(sec_path)
    curated = read_curated(curated_path)
    history = read_history(history_path) if history_path else []
    entities = read_entities(entities_path) if entities_path else []
    common = lowercase_words(corpus)
    everyday = EVERYDAY | {w for w, n in common.items() if n >= 2}
    companies = list(companies)
    symbols, dated, ciks = _symbols(sec, curated, history, companies)

    def canon(t: str) -> str | None:
        s = symbols.get(t.upper())
        return s[0] if s else None

    names = _hand_names(curated, history, entities, companies, canon)
    drops = {(canon(t), a.lower()) for t, a, k, _ in curated if k == "D"}
    _generated_names(sec, symbols, canon, names, drops, everyday)
    out = _one_holder(names, symbols)
    out.sort(key=lambda e: (e.ticker, e.name.lower(), e.since, e.entity))
    syms = sorted([(s, c, ex, rk, "", "") for s, (c, ex, rk) in symbols.items()] + dated, key=lambda x: x[3])
    return Table(aliases=out, symbols=syms, indexes=index_members(symbols),
                 ciks=[(c, t, n) for c, (t, n) in sorted(ciks.items())])


def _symbols(sec: list[dict], curated: list, history: list, companies: list[UserCompany]):
    """symbol -> (canonical ticker, exchange, rank), the dated former symbols, CIK -> (ticker, name)."""
    canonical_by_cik: dict[str, str] = {}
    symbols: dict[str, tuple[str, str, int]] = {}
    ciks: dict[int, tuple[str, str]] = {}
    for rank, r in enumerate(sec, start=1):
        t = r["ticker"].strip().upper()
        cik = (r.get("cik") or "").strip() or t
        canon = canonical_by_cik.setdefault(cik, t)
        symbols.setdefault(t, (canon, (r.get("exchange") or "").strip(), rank))
        if cik.isdigit() and int(cik) not in ciks:
            ciks[int(cik)] = (canon, company_name(r["name"]))
    listed = set(symbols)
    for ticker, alias, kind, _ in curated:
        if kind == "F" and ticker in listed:
            canon = symbols[ticker][0]
            old = alias.upper()
            if old not in symbols:
                symbols[old] = (canon, symbols[ticker][1], symbols[ticker][2])
            else:  # a share class the SEC lists separately
                symbols[old] = (canon, symbols[old][1], symbols[old][2])
    dated: list[tuple[str, str, str, int, str, str]] = []
    for f in history:
        if f.kind != "F" or f.ticker not in listed:
            continue
        canon, exchange, rank = symbols[f.ticker]
        old = f.name.upper()
        if old in symbols or f.since or f.until:  # taken by another company today, or ended: by date
            dated.append((old, canon, exchange, rank, f.since, f.until))
        else:
            symbols[old] = (canon, exchange, rank)
    for u in companies:  # the user's companies: their own symbols join the reference
        t = u.ticker.strip().upper()
        if t not in ("", "-") and t not in symbols:
            symbols[t] = (t, "user", len(sec) + 1)
    return symbols, dated, ciks


@dataclass
class _Names:
    """The alias rows being built: (lower-case name, ticker or entity key) -> row."""

    aliases: dict[tuple[str, str], AliasRow] = field(default_factory=dict)
    curated: set[str] = field(default_factory=set)  # names the hand-made tables hold (generated ones yield)
    forced: set[tuple[str, str]] = field(default_factory=set)  # hand-dated rows: win over generated names


def _hand_names(curated: list, history: list, entities: list, companies: list[UserCompany], canon) -> _Names:
    """The names of curated.tsv, history.tsv, entities.tsv and the user's companies."""
    names = _Names()
    for t, a, k, ctx in curated:
        if k in "FD":
            continue
        if k == "X":
            names.aliases[(a.lower(), "-")] = AliasRow(a, "-", "X")
            names.curated.add(a.lower())
            continue
        c = canon(t)
        if c is None:
            continue  # no longer listed
        names.aliases[(a.lower(), c)] = AliasRow(a, c, k, ctx)
        names.curated.add(a.lower())
    hand: list[tuple[str, AliasRow]] = []
    for f in history:
        c = canon(f.ticker)
        if f.kind != "F" and c is not None:
            hand.append((c, AliasRow(f.name, c, f.kind, f.context, f.since, f.until)))
    for e in entities:
        line = canon(e.us_line) if e.us_line != "-" else None
        for name in e.names:
            row = AliasRow(name.rstrip("*"), line or "", _entity_kind(name), "", e.since, e.until, "" if line else e.entity)
            hand.append((line or "@" + e.entity, row))
    for u in companies:
        t = u.ticker.strip().upper()
        c = "-" if t in ("", "-") else canon(t) or t
        hand.append((c, AliasRow(u.name, c, "X" if c == "-" else "U", "", u.since, u.until)))
    for key, row in hand:
        names.aliases[(row.name.lower(), key)] = row
        names.forced.add((row.name.lower(), key))
        if not row.until:  # a name that ended leaves the generated names of today's holder in place
            names.curated.add(row.name.lower())
    return names


def _generated_names(sec: list[dict], symbols: dict, canon, names: _Names, drops: set, everyday: set[str]) -> None:
    """Names generated from the SEC list: each company's full name and (larger issuers) its short forms."""
    aliases = names.aliases
    for r in sec:
        c = canon(r["ticker"])
        if c is None:
            continue
        exchange = (r.get("exchange") or "").strip()
        rank = symbols[r["ticker"].strip().upper()][2]
        full = normalize_name(r["name"])
        forms = [full]
        if rank <= 3000 and not _FUNDISH & {w.lower() for w in full.split()}:
            forms += [f for f in short_names(full) if f.split()[0].lower() not in _NO_SHORT or " " in f]
        forms += [f.replace("-", " ") for f in forms if "-" in f]  # "Snap-on" is also written "Snap On"
        for form in forms:
            low = form.lower()
            if len(re.sub(r"[^a-z]", "", low)) < 3 or low in names.curated or (c, low) in drops:
                continue
            row = _generated_row(form, c, rank, exchange, everyday)
            if row is not None:
                aliases.setdefault((low, c), row)


def _generated_row(form: str, c: str, rank: int, exchange: str, everyday: set[str]) -> AliasRow | None:
    """The alias row of one generated name form, or None when it is too risky to match."""
    low = form.lower()
    single = " " not in form
    if single and form.isupper() and len(form) <= 5:
        # an acronym name ("BHP", "UBS"): exact case, only for the larger issuers, never a word
        if rank <= 500 and len(form) >= 3 and low not in everyday and form not in NOT_SYMBOLS:
            return AliasRow(form, c, "C")
        return None
    if single:
        z = word_frequency(low)
        if low in everyday or z >= 4.0 or (rank > 500 and z >= 3.0 and exchange == "OTC"):
            if rank <= 1000 and exchange != "OTC":
                return AliasRow(form, c, "S")
            return None
        # a one-word generated name: never inside a longer capitalised name; a smaller issuer
        # whose name is also a familiar word only with a positive sign ("Viking shares")
        return AliasRow(form, c, "H" if rank > 500 and z >= 3.0 else "G")
    if all(w.lower() in everyday or w.lower() in ("of", "and", "&", "the") for w in form.split()) and rank > 1000:
        return None  # "Global Industrial Partners"-like names of small issuers: too generic
    return AliasRow(form, c, "N")


def _one_holder(names: _Names, symbols: dict) -> list[AliasRow]:
    """A name claimed by several companies at once is ambiguous: keep the largest (first in SEC order);
    names with a period (history.tsv, entities.tsv) are kept beside it.  One group per word sequence
    ("Ingersoll-Rand" = "Ingersoll Rand"), as the linker searches them."""
    by_words: dict[str, list[tuple[str, str, AliasRow]]] = {}
    for (low, key), entry in names.aliases.items():
        by_words.setdefault(name_key(low), []).append((low, key, entry))
    out: list[AliasRow] = []
    for keyed in by_words.values():
        timed = [e for _, _, e in keyed if e.since or e.until]
        entries = [e for _, _, e in keyed if not (e.since or e.until)]
        if len({e.ticker or e.entity for e in entries}) > 1:
            entries.sort(key=lambda e: (e.ticker == "-", symbols.get(e.ticker, ("", "", 10**9))[2]))
            cur = [e for low, k, e in keyed if not (e.since or e.until) and (
                (low, k) in names.forced or (low in names.curated and e.kind != "N") or e.ticker == "-")]
            first = entries[0] if not cur else cur[0]
            entries = [e for e in entries if (e.ticker, e.entity) == (first.ticker, first.entity)]
        ended = [e.until for e in timed if e.until]
        if entries and ended and entries[0].ticker not in {e.ticker for e in timed if e.until}:
            # today's holder took the name when the last former holder stopped using it
            entries = [e._replace(since=max(ended)) for e in entries]
        out.extend(timed + entries)
    return out


def write_table(table: Table, aliases_path: Path = ALIASES, symbols_path: Path = SYMBOLS,
                index_path: Path = INDEX_FILE, ciks_path: Path = CIKS) -> None:
    head = ("# generated by 'finsent tickers build' from the SEC reference, curated.tsv, history.tsv and "
            "entities.tsv: do not edit\n")
    with open(aliases_path, "w", encoding="utf-8", newline="\n") as f:
        f.write(head)
        for row in table.aliases:
            f.write("\t".join(row) + "\n")
    with open(symbols_path, "w", encoding="utf-8", newline="\n") as f:
        f.write(head)
        for s, c, ex, rk, since, until in table.symbols:
            f.write(f"{s}\t{c}\t{ex}\t{rk}" + (f"\t{since}\t{until}" if since or until else "") + "\n")
    with open(ciks_path, "w", encoding="utf-8", newline="\n") as f:
        f.write(head.split(" from ")[0] + " from the SEC reference (cik, canonical ticker, name): do not edit\n")
        for cik, ticker, name in table.ciks:
            f.write(f"{cik}\t{ticker}\t{name}\n")
    if table.indexes is not None:  # without pytickersymbols the committed index lists stay as they are
        with open(index_path, "w", encoding="utf-8", newline="\n") as f:
            f.write(head.split(" from ")[0] + " from pytickersymbols' index lists: do not edit\n")
            for key in sorted(table.indexes):
                for t in table.indexes[key]:
                    f.write(f"{key}\t{t}\n")
