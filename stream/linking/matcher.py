"""The entity linker: text -> tickers, each with the span, the matched text and the rule.

Pure code over a loaded alias table (see :mod:`stream.linking.build`).  Rules:

* ``cashtag``: ``$AAPL`` (any symbol-shaped cashtag; listed share classes fold);
* ``exchange``: ``(NYSE: X)``, ``NASDAQ:X``, ``Nasdaq-listed X`` with X a listed symbol;
* ``paren``: a listed symbol in parentheses right after a capitalised name: ``Ashford Hospitality Trust (AHT)``;
* ``symbol_list``: the listed ALL-CAPS symbols of a list (``Price Targets On AAP, CVS, GPC``,
  ``Volume Movers (KVHI, REGN, ARTC)``): every known symbol links, unknown or delisted ones are skipped;
* ``name`` / ``acronym``: a company name, brand or former name from the table, whole-word and case-aware;
* ``alias``: a name from the user's alias CSV (``aliases`` setting), matched case-insensitively;
* ``cik``: a company the message names by its SEC CIK (an EDGAR filing's filer): the ticker comes
  from the shipped reference (``ciks.tsv``), exactly, and the span is the company's name in the text
  (:meth:`Linker.link_ciks`).

Point in time: ``link(text, at=date)`` reads names and symbols as they were on that date.  A name
belongs to the company that took it most recently before ``at`` ("Alcoa" is Howmet's former
name before 2016-11-01 and Alcoa Corp's after), and stays with it after a rename as long as nobody
took it since (news keeps writing "Facebook"); a former symbol maps to its company only within its
period (``GOLD`` is Barrick from 2019 to 2025).  ``at=None`` reads the text as current.

Unlisted entities (a foreign issuer with no US line, a company taken private) are names with no
ticker: they consume their span (so "Merck KGaA" never links MRK) and are returned, as a
:class:`Link` with ``ticker=None`` and the ``entity`` name, only to ``link(..., unlisted=True)``.

Symbols that are also words ("A", "ALL", "IT", "ON", "NOW") never match in running
text: a bare symbol counts only where the text marks it as one.  Everyday words that
are company names ("Target", "Shell", "Gap") need proper case and context.
"""

from __future__ import annotations

import csv
import hashlib
import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import ahocorasick

HERE = Path(__file__).resolve().parent

_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,6}(?:[.\-][A-Za-z]{1,2})?)(?![\w])")
_EXCHANGES = (
    r"NYSE\s*American|NYSE\s*Arca|NYSE\s*MKT|NYSE|NASDAQ(?:GS|GM|CM)?|Nasdaq(?:GS|GM|CM)?|AMEX|NYSEAMERICAN|"
    r"NYSEARCA|OTC(?:QX|QB|MKTS)?|OTC\s*Markets|CBOE|BATS|Cboe"
)
_EXCHANGE_TAG = re.compile(r"\b(?:" + _EXCHANGES + r")\s*:\s*\$?([A-Za-z]{1,6}(?:[.\-][A-Za-z]{1,2})?)\b")
_LISTED = re.compile(r"\b(?:NYSE|Nasdaq|NASDAQ)-listed\s+([A-Z][A-Za-z0-9.&\-]*(?:\s+[A-Z][A-Za-z0-9.&\-]*){0,3})")
_PAREN = re.compile(r"(?<=[A-Za-z.,)])\s*\(([A-Z]{1,5}(?:[.\-][A-Z])?)\)")
_SYM = r"[A-Z]{1,5}(?:[.\-][A-Z])?"
_LIST = re.compile(
    rf"(?<![\w$])({_SYM})(?:(?:\s*,\s*(?:(?:and|&)\s+)?|\s+(?:and|&)\s+)({_SYM}))+(?![\w])"
)
# a list the text marks as symbols: in parentheses, or after "On" / "Movers" / "Gainers" / "Losers" / ":"
_LIST_MARK = re.compile(r"(?:\(|\b(?:[Oo]n|ON|[Mm]overs|[Gg]ainers|[Ll]osers|[Ss]tocks|[Nn]ames|[Tt]ickers)\s*:?|:)\s*$")
_LIST_TOKEN = re.compile(r"[A-Z]{1,5}(?:[.\-][A-Z])?")
# acronyms that are not symbols in a list or in parentheses, even when some issuer uses them as one
NOT_SYMBOLS = frozenset(
    "A I AM AN AS AT BE BY DO GO HE IF IN IS IT ME MY NO OF OH OK ON OR SO TO UP US WE ALL AND ARE BUT CAN "
    "FOR HAS NEW NOT NOW ONE OUT THE YOU CEO CFO COO CTO IPO ETF EPS GDP CPI PPI PMI FDA SEC FED ECB BOE BOJ "
    "IMF EU UK USA AI EV EVS API USD EUR GBP JPY CNY OPEC ESG SPAC NFT IRS DOJ FTC FCC EPA NYSE NASDAQ OTC "
    "Q1 Q2 Q3 Q4 H1 H2 FY YTD YOY QOQ PT ATH TV PC PR DJIA SPX NDX VIX WTI LNG COVID ATM ADR ADS REIT LLC INC "
    "CORP LTD PLC AG SA NV SE CO NA UPDATE BREAKING WATCH LIVE NEWS ALERT BUY SELL HOLD".split()
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'’\-]*")
_POSITIVE_NEXT = frozenset(
    "shares share stock stocks inc inc. corp corp. co co. ceo cfo chief executive earnings results revenue "
    "revenues sales profit profits quarterly q1 q2 q3 q4 shareholders investors board said says say reports "
    "reported posts posted beats beat misses missed sees raises raised cuts cut plans plan announces announced "
    "to will is has had recalls unveils launches launched agrees agreed buys bought sells sold files filed "
    "hires names names' stake deal deals layoffs jobs workers employees executives spokesperson "
    "guidance forecast forecasts outlook dividend buyback upgrade upgraded downgrade downgraded "
    "rallies rally jumps jumped falls fell slides slid drops dropped soars soared tumbles tumbled surges "
    "surged sinks sank gains gained rises rose climbs climbed plunges plunged slumps slumped".split()
)
_POSITIVE_PREV = frozenset(
    "at rival rivals owner from versus vs vs. like retailer giant maker makers carrier bank lender insurer "
    "automaker airline chipmaker operator firm company group brand competitor peers peer about on".split()
)
_STRONG_NEXT = frozenset(
    "shares share stock stocks inc inc. corp corp. ceo cfo earnings results revenue sales profit quarterly "
    "q1 q2 q3 q4 shareholders investors stake".split()
)


@dataclass(frozen=True)
class Link:
    """One mention: ``text[start:end]`` names ``ticker`` (None: an unlisted ``entity``) by ``rule``."""

    ticker: str | None
    start: int
    end: int
    text: str
    rule: str
    entity: str | None = None  # the unlisted entity's name (ticker None), else None

    def as_dict(self) -> dict:
        d = {"ticker": self.ticker, "start": self.start, "end": self.end, "text": self.text, "rule": self.rule}
        if self.entity is not None:
            d["entity"] = self.entity
        return d


class AliasRow(NamedTuple):
    """A row of ``aliases.tsv``: ticker ``-`` blocks a phrase, an empty ticker is an unlisted entity.
    ``since`` / ``until``: ISO dates of the period the name was in use (empty: open)."""

    name: str
    ticker: str
    kind: str
    context: str = ""
    since: str = ""
    until: str = ""
    entity: str = ""


class UserCompany(NamedTuple):
    """A row of the user's companies file: ``ticker,name[,from,until]`` (ticker ``-`` removes the name)."""

    ticker: str
    name: str
    since: str = ""
    until: str = ""


@dataclass(frozen=True)
class _Alias:
    name: str  # display form, decides the case rule
    ticker: str  # "" = unlisted entity, "-" = blocking phrase
    kind: str  # N C A S X G H U(user)
    reject_prev: frozenset[str] = frozenset()
    reject_next: frozenset[str] = frozenset()
    plus_prev: frozenset[str] = frozenset()
    plus_next: frozenset[str] = frozenset()
    since: str = ""
    entity: str = ""


def _parse_context(ctx: str) -> dict[str, frozenset[str]]:
    parts: dict[str, set[str]] = {"reject_prev": set(), "reject_next": set(), "plus_prev": set(), "plus_next": set()}
    for tok in ctx.split():
        if tok.startswith("+<"):
            parts["plus_prev"].add(tok[2:].lower())
        elif tok.startswith("+>"):
            parts["plus_next"].add(tok[2:].lower())
        elif tok.startswith("<"):
            parts["reject_prev"].add(tok[1:].lower())
        elif tok.startswith(">"):
            parts["reject_next"].add(tok[1:].lower())
    return {k: frozenset(v) for k, v in parts.items()}


def _read_tsv(path: Path) -> Iterable[list[str]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            yield line.rstrip("\n").split("\t")


def _fold_text(text: str) -> str:
    """Lower-cased text of the same length (offsets stay valid); curly apostrophes become straight."""
    low = text.lower()
    if len(low) != len(text):
        low = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    return low.replace("’", "'")


# ASCII punctuation and a few Unicode marks separate words; "$@#&_" do not (so "#Apple", "@Apple"
# and "AT&T" inside "XAT&T" are not names) and letters of any script stay letters
_BOUNDARY = {ord(c): " " for c in "\t\n\r\x0b\x0c !\"%'()*+,-./:;<=>?[\\]^`{|}~\xa0’‘“”–—…·•"}


def name_key(name: str) -> str:
    """A name as the text is searched: lower case, each punctuation mark a space ("Ingersoll-Rand" and
    "Ingersoll Rand" are one key; the same length as the name, so spans stay exact)."""
    return _fold_text(name.strip()).translate(_BOUNDARY)


class Linker:
    """Links text to listed tickers.  Build once (the automaton), call :meth:`link` per text.

    ``Linker()`` uses the shipped table; ``Linker({"Acme": "ACME"})`` adds the user's aliases
    (``{alias: ticker}``, or :class:`UserCompany` rows with a period; matched case-insensitively;
    ticker ``-`` removes a shipped name).
    ``watchlist``: the tickers that make trends and alerts (None = all); see :meth:`in_watchlist`.
    """

    def __init__(
        self,
        user_aliases: Mapping[str, str] | Iterable[UserCompany] | None = None,
        *,
        aliases: Iterable[tuple[str, ...]] | None = None,
        symbols: Mapping[str, str] | None = None,
        dated_symbols: Iterable[tuple[str, str, str, str]] | None = None,
        watchlist: Iterable[str] | None = None,
    ) -> None:
        self._reference: tuple = ("shipped",) if aliases is None and symbols is None else (
            tuple(map(tuple, aliases or ())), tuple(sorted((symbols or {}).items())), tuple(dated_symbols or ()))
        if aliases is None or symbols is None:
            shipped_aliases, shipped_symbols, shipped_dated = shipped_table()
            aliases = shipped_aliases if aliases is None else aliases
            if symbols is None:
                symbols, dated_symbols = shipped_symbols, shipped_dated if dated_symbols is None else dated_symbols
        self.symbols: dict[str, str] = dict(symbols)  # symbol -> canonical ticker (today)
        # former symbols in their period: symbol -> [(since, until, canonical)], latest first
        self._dated: dict[str, list[tuple[str, str, str]]] = {}
        for sym, canon, since, until in dated_symbols or ():
            self._dated.setdefault(sym, []).append((since, until, canon))
        for periods in self._dated.values():
            periods.sort(reverse=True)
        self.watchlist: frozenset[str] | None = (
            None if watchlist is None else frozenset(self.symbols.get(t.upper(), t.upper()) for t in watchlist)
        )
        # one entry list per word sequence ("Ingersoll-Rand" = "Ingersoll Rand"), each entry keeping its own
        # written form for the case rules
        table: dict[str, list[_Alias]] = {}
        for row in aliases:
            r = AliasRow(*row)
            table.setdefault(name_key(r.name), []).append(
                _Alias(r.name, r.ticker, r.kind, **_parse_context(r.context), since=r.since, entity=r.entity))
        for entries in table.values():
            if len(entries) > 1:  # several holders of one name over time: the latest first
                entries.sort(key=lambda e: e.since, reverse=True)
        users = list(user_aliases.items() if isinstance(user_aliases, Mapping) else user_aliases or ())
        self._reference += (isinstance(user_aliases, Mapping), tuple(tuple(r) for r in users))
        self._version: str | None = None
        for row in users:
            u = UserCompany(row[1], row[0]) if isinstance(user_aliases, Mapping) else UserCompany(*row)
            name, ticker = u.name.strip(), u.ticker.strip().upper()
            if not name:
                continue
            key = name_key(name)
            if ticker in ("", "-"):  # the user removes a name
                table[key] = [_Alias(name, "-", "X")]
                continue
            entry = _Alias(name, self.symbols.get(ticker, ticker), "U", since=u.since)
            if u.since or u.until:  # a dated name joins the other holders of the name
                kept = [e for e in table.get(key, []) if e.kind != "X"]
                table[key] = sorted(kept + [entry], key=lambda e: e.since, reverse=True)
            else:
                table[key] = [entry]
        self._table = table
        # the automaton holds " key " (words of the name, see name_key), so it only reports whole-word
        # matches; each entry's written form is checked against the text afterwards
        self._auto = ahocorasick.Automaton()
        for key in table:
            self._auto.add_word(f" {key} ", key)
        if table:
            self._auto.make_automaton()

    @property
    def version(self) -> str:
        """The reference's version: a hash of everything that decides :meth:`link`'s answer (the matcher's
        code, the shipped tables it reads, the user's aliases; not the watchlist, which only marks links).
        Links found with one version are reused wherever a linker of the same version would find them:
        the news.raw message carries them (``stream.messages.raw_message``)."""
        if self._version is None:
            h = hashlib.sha256()
            for part in self._reference:
                h.update((shipped_version() if part == "shipped" else repr(part)).encode("utf-8"))
                h.update(b"\x1f")
            self._version = h.hexdigest()[:16]
        return self._version

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_csv(cls, path: str | Path, watchlist: Iterable[str] | None = None) -> Linker:
        """The shipped table extended by the user's alias CSV ``ticker,alias[,from,until]``."""
        return cls(read_user_companies(path), watchlist=watchlist)

    def company(self, cik: str | int) -> tuple[str, str] | None:
        """(canonical ticker, readable name) of an SEC CIK (``320193``, ``"0000320193"``), or None when the
        shipped reference does not list it."""
        key = normalize_cik(cik)
        found = shipped_ciks().get(key) if key is not None else None
        if found is None:
            return None
        return self.symbols.get(found[0], found[0]), found[1]

    def link_ciks(self, ciks: Iterable[str | int], text: str) -> list[Link]:
        """A ``cik`` link for each CIK the reference lists, spanning the company's name in ``text`` (the
        first match, in any case; an empty span at 0 when the text does not name it)."""
        links: list[Link] = []
        folded = text.lower()
        for cik in ciks:
            found = self.company(cik)
            if found is None:
                continue
            ticker, name = found
            start = text.find(name)
            if start < 0:
                start = folded.find(name.lower()) if name else -1
            if start < 0:
                links.append(Link(ticker, 0, 0, "", "cik"))
            else:
                links.append(Link(ticker, start, start + len(name), text[start:start + len(name)], "cik"))
        return links

    def in_watchlist(self, ticker: str) -> bool:
        return self.watchlist is None or ticker in self.watchlist

    def canonical(self, symbol: str, at: date | datetime | str | None = None) -> str | None:
        """The canonical ticker of a symbol (as it was on ``at``: a former symbol within its period)."""
        return self._symbol(symbol.upper(), _day(at))

    def _symbol(self, sym: str, day: str | None) -> str | None:
        periods = self._dated.get(sym)
        if periods is None:
            return self.symbols.get(sym)
        if day is not None:
            for since, until, canon in periods:
                if since <= day and (not until or day < until):
                    return canon
        current = self.symbols.get(sym)
        return current if current is not None else periods[0][2]  # a former symbol nobody took since

    # ------------------------------------------------------------------ linking
    def extract(self, text: str, at: date | datetime | str | None = None) -> list[str]:
        """The ticker of every link in ``text``, in text order (the old ``TickerExtractor`` interface)."""
        return [link.ticker for link in self.link(text, at) if link.ticker is not None]

    def link(self, text: str, at: date | datetime | str | None = None, *, unlisted: bool = False) -> list[Link]:
        """Every mention in ``text`` read as of ``at`` (the publication time; None: today), in text
        order; ``unlisted``: also the mentions of entities with no US ticker (``ticker`` None)."""
        if not isinstance(text, str) or not text:
            return []
        day = _day(at)
        if "&" in text and ";" in text:
            text = html.unescape(text)  # "AT&amp;T" in scraped feeds; spans refer to the unescaped text
        links: list[Link] = []
        taken: list[tuple[int, int]] = []
        for m in (_CASHTAG.finditer(text) if "$" in text else ()):
            sym = m.group(1).upper()
            links.append(Link(self._symbol(sym, day) or sym, m.start(), m.end(), m.group(0), "cashtag"))
            taken.append((m.start(), m.end()))
        for m in (_EXCHANGE_TAG.finditer(text) if ":" in text else ()):
            sym = m.group(1).upper()
            if m.group(1).isupper() and not _overlaps(taken, m.start(1), m.end(1)):
                links.append(Link(self._symbol(sym, day) or sym, m.start(), m.end(), m.group(0), "exchange"))
                taken.append((m.start(), m.end()))
        for m in (_LISTED.finditer(text) if "-listed" in text else ()):
            sym = m.group(1).split()[0]
            canon = self._symbol(sym, day) if sym.isupper() and sym not in NOT_SYMBOLS else None
            if canon and not _overlaps(taken, m.start(1), m.end(1)):
                links.append(Link(canon, m.start(), m.start(1) + len(sym), text[m.start():m.start(1) + len(sym)], "exchange"))
                taken.append((m.start(1), m.start(1) + len(sym)))
        caps_text = _mostly_caps(text)
        if "(" in text or "," in text or " and " in text or "&" in text:
            links += self._symbols_in_lists(text, day, taken, caps_text)
        confirmed = {lk.ticker for lk in links}
        links.extend(self._names(text, day, taken, caps_text, confirmed))
        links.sort(key=lambda lk: lk.start)
        return links if unlisted else [lk for lk in links if lk.ticker is not None]

    def _symbols_in_lists(self, text: str, day: str | None, taken: list[tuple[int, int]],
                          caps_text: bool) -> list[Link]:
        """``paren`` and ``symbol_list`` links.  In a list the text marks as symbols (in parentheses, after
        "On", "Movers", "Gainers", ...) every known symbol links; in an unmarked list at least two must be
        known.  Unknown and delisted symbols never block the others; words (NOT_SYMBOLS) never link."""
        out: list[Link] = []
        for m in (_LIST.finditer(text) if ("," in text or " and " in text or "&" in text) else ()):
            marked = bool(_LIST_MARK.search(text, 0, m.start()))
            if caps_text and not (marked and text[:m.start()].rstrip().endswith("(")):
                continue  # an ALL-CAPS headline is a list of words, unless the list is in parentheses
            toks = [(t.group(0), m.start() + t.start()) for t in _LIST_TOKEN.finditer(m.group(0))]
            if len({t for t, _ in toks}) < 2:
                continue
            known = [(t, s, c) for t, s in toks if t not in NOT_SYMBOLS and (c := self._symbol(t, day))]
            if len(known) < (1 if marked else 2) or (not marked and 2 * len(known) < len(toks)):
                continue
            for t, s, canon in known:
                if not _overlaps(taken, s, s + len(t)):
                    out.append(Link(canon, s, s + len(t), t, "symbol_list"))
                    taken.append((s, s + len(t)))
        if caps_text:
            return out
        for m in (_PAREN.finditer(text) if "(" in text else ()):
            sym = m.group(1)
            canon = self._symbol(sym, day) if sym not in NOT_SYMBOLS else None
            if canon and not _overlaps(taken, m.start(1), m.end(1)):
                out.append(Link(canon, m.start(1) - 1, m.end(1) + 1, f"({sym})", "paren"))
                taken.append((m.start(1) - 1, m.end(1) + 1))
        return out

    def _names(self, text: str, day: str | None, taken: list[tuple[int, int]], caps_text: bool,
               confirmed: set[str | None]) -> list[Link]:
        if not self._table:
            return []
        low = _fold_text(text)
        cands: list[tuple[int, int, str]] = []
        for end, key in self._auto.iter(f" {low.translate(_BOUNDARY)} "):
            start = end - len(key) - 1  # offsets in text: the search string has one leading space
            cands.append((start, start + len(key), key))  # "Kimberly-Clark" = "Kimberly Clark"
        # leftmost-longest, no overlaps
        cands.sort(key=lambda c: (c[0], -(c[1] - c[0])))
        out: list[Link] = []
        last_end = -1
        title_text = None
        for start, end, key in cands:
            if start < last_end or _overlaps(taken, start, end):
                continue
            span = text[start:end]
            for e in _holders(self._table[key], day):
                if e.kind == "X":
                    if _case_ok(e.name, span):
                        last_end = end  # a blocking phrase ("United States") consumes its words
                        break
                    continue
                if title_text is None:
                    title_text = _title_case(text)
                rule = self._accept(e, text, start, end, span, caps_text, title_text, confirmed)
                if rule:
                    out.append(Link(e.ticker or None, start, end, span, rule, e.entity or None))
                    last_end = end
                    break
        return out

    def _accept(self, e: _Alias, text: str, start: int, end: int, span: str, caps_text: bool,
                title_text: bool, confirmed: set[str | None]) -> str | None:
        if e.kind == "U":
            return "alias"
        if e.kind == "C":
            if span != e.name or (caps_text and len(e.name) < 3) or _rejected(e, text, start, end):
                return None
            return "acronym"
        if not _case_ok(e.name, span):
            return None
        if e.kind == "N":
            if caps_text and len(e.name) < 4:
                return None
            return None if _rejected(e, text, start, end) else "name"
        prev = _prev_word(text, start)
        nxt, possessive = _next_word(text, end)
        if prev in e.reject_prev or nxt in e.reject_next:
            return None  # context rules: "German Merck", "carmaker Bentley", "apple juice"
        prev_raw = _prev_word(text, start, lower=False)
        after_capital = (  # "Carson Block", "Chair Powell": the name may continue a capitalised word
            prev_raw[:1].isupper() and prev not in _SMALL and prev not in _POSITIVE_PREV and prev not in _STARTERS
            and not prev_raw.endswith(("'s", "’s")) and not _sentence_start(text, start)
        )
        inside_name = after_capital and not title_text
        if prev in _PERSON_PREV:
            return None  # "Fed's Powell", "Chair Powell", "investor Icahn": a person, not the company
        if e.kind in "GH":
            if caps_text or inside_name:
                return None
            if after_capital and not (possessive or nxt in _POSITIVE_NEXT):
                return None  # Title Case: "CEO Jonathan Ferrari on Q3" but "Upgrade Hasbro To Buy"
            nxt_raw = _next_word(text, end, lower=False)[0]
            if nxt_raw[:1].isupper() and nxt not in _POSITIVE_NEXT and not possessive and not title_text:
                return None  # "Baxter Planning", "Viking Line": a longer name we do not know
            if e.kind == "G":
                return "name"
            positive = (
                possessive or nxt in _POSITIVE_NEXT or prev in _POSITIVE_PREV or e.ticker in confirmed
                or text[end:end + 1] == ":"
            )
            return "name" if positive else None
        # A and S: everyday words
        if inside_name:
            return None
        if caps_text or (span.isupper() and len(span) > 1 and not e.name.isupper()):
            return None
        if end < len(text) and text[end] == "-" and not possessive:
            return None  # "Meta-analysis", "Target-date"
        positive = (
            e.ticker in confirmed or possessive or nxt in e.plus_next or prev in e.plus_prev
        )
        if e.kind == "S":  # only with a strong sign: possessive, "shares"/"CEO"/..., its own tag or context
            return "name" if positive or nxt in _STRONG_NEXT else None
        if title_text:
            ok = positive or nxt in _POSITIVE_NEXT or prev in _POSITIVE_PREV
            return "name" if ok else None
        return "name"  # sentence case, proper case, no negative context (also first in a sentence)


def _rejected(e: _Alias, text: str, start: int, end: int) -> bool:
    """A context rule of the alias says no: the word before or after the name rejects it."""
    if not (e.reject_prev or e.reject_next):
        return False
    return _prev_word(text, start) in e.reject_prev or _next_word(text, end)[0] in e.reject_next


def _holders(entries: list[_Alias], day: str | None) -> list[_Alias]:
    """The entries of the company that held the name on ``day``: the latest to take it before that day
    (on the day of a change the news still reports the old holder's event; entries are sorted latest
    first; an undated entry holds it since always); [] before anyone."""
    if len(entries) == 1:
        return entries if day is None or entries[0].since < day else []
    since = entries[0].since if day is None else next((e.since for e in entries if e.since < day), None)
    return [] if since is None else [e for e in entries if e.since == since]


def _day(at: date | datetime | str | None) -> str | None:
    """``at`` as an ISO day "YYYY-MM-DD" (an aware datetime in UTC), or None."""
    if at is None:
        return None
    if isinstance(at, datetime):
        return (at.astimezone(UTC) if at.tzinfo else at).date().isoformat()
    if isinstance(at, date):
        return at.isoformat()
    return str(at)[:10]


# --------------------------------------------------------------------------- helpers (pure)
def _overlaps(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(s < end and start < e for s, e in spans)


def _case_ok(name: str, span: str) -> bool:
    """Each word of the name that starts with a capital must start with one in the text."""
    nw, sw = name.split(), span.split()
    if len(nw) != len(sw):
        return span[:1].isupper() or not name[:1].isupper()
    for a, b in zip(nw, sw):
        if a[:1].isupper() and not b[:1].isupper():
            return False
        if a[:1].isalpha() and a[:1].islower() and a.lower() not in ("of", "and", "the", "de", "&") and a != b:
            # "eBay", "iPhone": lower-case initial is part of the brand (allow all-caps too)
            if b != a.upper() and b[1:] != a[1:]:
                return False
    return True


_NON_LETTER = re.compile(r"[^A-Za-z]+")
_DROP_UPPER = str.maketrans("", "", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DROP_LOWER = str.maketrans("", "", "abcdefghijklmnopqrstuvwxyz")


def _mostly_caps(text: str) -> bool:
    """An ALL-CAPS headline (at least 80% of its ASCII letters upper case, 3+ words)."""
    head = text[:64]
    if len(head) - len(head.translate(_DROP_LOWER)) > 12:  # plenty of lower case early on: not (fast path)
        return False
    letters = _NON_LETTER.sub("", text)
    if len(letters) < 12 or len(_WORD.findall(text)) < 3:
        return False
    upper = len(letters) - len(letters.translate(_DROP_UPPER))
    return upper >= 0.8 * len(letters)


# words before a person's name
_PERSON_PREV = frozenset(
    "chair chairman chairwoman president governor secretary senator sen rep mr mrs ms dr judge minister "
    "premier ceo cfo coo founder co-founder billionaire investor activist analyst economist strategist "
    "fed's fed boss chief mayor commissioner ambassador spokesman spokeswoman lawmaker justice king queen "
    "prince princess general gov".split()
)
# capitalised only because they start a sentence ("Because Target said so")
_STARTERS = frozenset(
    "because but and as when why how what if while after before so now then also still even why where who "
    "whether though although since until unless once here there this that these those it its we they he she "
    "i you our their his her my your why breaking update watch report analysis exclusive".split()
)
_SMALL = frozenset("a an and as at but by for from in into of on or the to vs with".split())


def _title_case(text: str) -> bool:
    """A headline in Title Case: most longer words start with a capital."""
    words = [w for w in _WORD.findall(text) if len(w) > 3 and w.lower() not in _SMALL]
    if len(words) < 3:
        return False
    return sum(w[0].isupper() for w in words) >= 0.7 * len(words)


def _prev_word(text: str, start: int, lower: bool = True) -> str:
    i = start - 1
    while i >= 0 and text[i] in " \t\"“‘(":
        i -= 1
    j = i
    while j >= 0 and (text[j].isalnum() or text[j] in "-.&'’"):
        j -= 1
    word = text[j + 1:i + 1].rstrip(".")
    return word.lower() if lower else word


def _next_word(text: str, end: int, lower: bool = True) -> tuple[str, bool]:
    """The next word (lower case) and whether the name is possessive ("Apple's", "Lowe's", "Kone 's")."""
    if text[end:end + 3] in (" 's", " ’s"):
        end += 1
    possessive = text[end:end + 2] in ("'s", "’s") or (
        end < len(text) and text[end] in "'’" and text[end - 1:end] in ("s", "S")
        and (end + 1 == len(text) or not text[end + 1].isalnum())
    )
    i = end + (2 if text[end:end + 2] in ("'s", "’s") else 0)
    while i < len(text) and text[i] in " \t\"'’”)":
        i += 1
    j = i
    while j < len(text) and (text[j].isalnum() or text[j] in "-.&"):
        j += 1
    word = text[i:j].rstrip(".")
    return (word.lower() if lower else word), possessive


def _sentence_start(text: str, start: int) -> bool:
    i = start - 1
    while i >= 0 and text[i] in " \t\"'“‘(":
        i -= 1
    return i < 0 or text[i] in ".!?:;-–—|\n"


@lru_cache(maxsize=1)
def shipped_table() -> tuple[tuple[AliasRow, ...], dict[str, str], tuple[tuple[str, str, str, str], ...]]:
    """The committed alias table, the symbol map of today and the former symbols with their periods
    ``(symbol, canonical, since, until)`` (read once per process)."""
    aliases = tuple(AliasRow(*r[:7]) for r in _read_tsv(HERE / "aliases.tsv") if len(r) >= 3)
    symbols: dict[str, str] = {}
    dated: list[tuple[str, str, str, str]] = []
    for r in _read_tsv(HERE / "symbols.tsv"):
        if len(r) >= 6 and (r[4] or r[5]):
            dated.append((r[0], r[1], r[4], r[5]))
        elif len(r) >= 2:
            symbols[r[0]] = r[1]
    return aliases, symbols, tuple(dated)


REFERENCE_FILES = ("matcher.py", "aliases.tsv", "symbols.tsv", "ciks.tsv")  # what the shipped linker reads


@lru_cache(maxsize=1)
def shipped_version() -> str:
    """sha256 (hex) of this module's code and the shipped tables it reads: any change gives a new version."""
    h = hashlib.sha256()
    for name in REFERENCE_FILES:
        h.update(name.encode())
        h.update((HERE / name).read_bytes())
    return h.hexdigest()


def normalize_cik(cik: str | int) -> int | None:
    """An SEC CIK as a number (``"0000320193"`` -> 320193); None when it is not one (1 to 10 digits)."""
    text = str(cik).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 10 or int(text) == 0:
        return None
    return int(text)


@lru_cache(maxsize=1)
def shipped_ciks() -> dict[int, tuple[str, str]]:
    """SEC CIK -> (canonical ticker, readable name) of the shipped reference (``ciks.tsv``)."""
    return {int(r[0]): (r[1], r[2]) for r in _read_tsv(HERE / "ciks.tsv") if len(r) >= 3 and r[0].isdigit()}


def symbol_ranks() -> dict[str, int]:
    """Canonical ticker -> rank in the SEC list (1 = largest issuer), for the ``topN`` watchlists."""
    ranks: dict[str, int] = {}
    for r in _read_tsv(HERE / "symbols.tsv"):
        if len(r) >= 4:
            ranks.setdefault(r[1], int(r[3]))
    return ranks


def read_user_companies(path: str | Path) -> list[UserCompany]:
    """The user's companies CSV ``ticker,name[,from,until]`` (header optional; several names of one
    company separated by ``|``; dates ISO ``YYYY-MM-DD``, either may be empty); ticker ``-`` removes a
    shipped name.  The ``aliases`` setting and ``finsent tickers build --companies`` read it."""
    rows: list[UserCompany] = []
    with open(path, newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f), start=1):
            if len(row) < 2 or not row[0].strip() or row[0].strip().startswith("#"):
                continue
            if n == 1 and row[0].strip().lower() == "ticker":
                continue
            since, until = (c.strip() for c in (row[2:4] + ["", ""])[:2])
            for d in (since, until):
                if d and not _ISO_DAY.fullmatch(d):
                    raise ValueError(f"{path}: line {n}: {d!r} is not a date YYYY-MM-DD")
            for name in row[1].split("|"):
                if name.strip():
                    rows.append(UserCompany(row[0].strip(), name.strip(), since, until))
    return rows


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def read_user_aliases(path: str | Path) -> dict[str, str]:
    """The user's CSV ``ticker,alias`` as ``{alias: ticker}`` (periods ignored; see :func:`read_user_companies`)."""
    return {c.name: c.ticker for c in read_user_companies(path)}
