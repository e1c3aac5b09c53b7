"""The entity linker: text -> tickers, each with the span, the matched text and the rule.

Pure code over a loaded alias table (see :mod:`stream.linking.build`).  Rules:

* ``cashtag``: ``$AAPL`` (any symbol-shaped cashtag; listed share classes fold);
* ``exchange``: ``(NYSE: X)``, ``NASDAQ:X``, ``Nasdaq-listed X`` with X a listed symbol;
* ``paren``: a listed symbol in parentheses right after a capitalised name: ``Ashford Hospitality Trust (AHT)``;
* ``symbol_list``: two or more listed ALL-CAPS symbols in a list: ``Price Targets On AAP, CVS, GPC``;
* ``name`` / ``acronym``: a company name, brand or former name from the table, whole-word and case-aware;
* ``alias``: a name from the user's alias CSV (``aliases`` setting), matched case-insensitively.

Symbols that are also words ("A", "ALL", "IT", "ON", "NOW") never match in running
text: a bare symbol counts only where the text marks it as one.  Everyday words that
are company names ("Target", "Shell", "Gap") need proper case and context.
"""

from __future__ import annotations

import csv
import html
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

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
_LIST = re.compile(
    r"(?<![\w$])([A-Z]{1,5}(?:[.\-][A-Z])?)(?:(?:\s*,\s*|\s+(?:and|&)\s+)([A-Z]{1,5}(?:[.\-][A-Z])?))+(?![\w])"
)
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
    ticker: str
    start: int
    end: int
    text: str
    rule: str

    def as_dict(self) -> dict:
        return {"ticker": self.ticker, "start": self.start, "end": self.end, "text": self.text, "rule": self.rule}


@dataclass(frozen=True)
class _Alias:
    name: str  # display form, decides the case rule
    ticker: str
    kind: str  # N C A S X U(user)
    reject_prev: frozenset[str] = frozenset()
    reject_next: frozenset[str] = frozenset()
    plus_prev: frozenset[str] = frozenset()
    plus_next: frozenset[str] = frozenset()


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


class Linker:
    """Links text to listed tickers.  Build once (the automaton), call :meth:`link` per text.

    ``Linker()`` uses the shipped table; ``Linker({"Acme": "ACME"})`` adds the user's aliases
    (``{alias: ticker}``, matched case-insensitively; ticker ``-`` removes a shipped name).
    ``watchlist``: the tickers that make trends and alerts (None = all); see :meth:`in_watchlist`.
    """

    def __init__(
        self,
        user_aliases: Mapping[str, str] | None = None,
        *,
        aliases: Iterable[tuple[str, str, str, str]] | None = None,
        symbols: Mapping[str, str] | None = None,
        watchlist: Iterable[str] | None = None,
    ) -> None:
        if aliases is None or symbols is None:
            shipped_aliases, shipped_symbols = shipped_table()
            aliases = shipped_aliases if aliases is None else aliases
            symbols = shipped_symbols if symbols is None else symbols
        self.symbols: dict[str, str] = dict(symbols)  # symbol -> canonical ticker
        self.watchlist: frozenset[str] | None = (
            None if watchlist is None else frozenset(self.symbols.get(t.upper(), t.upper()) for t in watchlist)
        )
        table: dict[str, list[_Alias]] = {}
        for name, ticker, kind, ctx in aliases:
            table.setdefault(name.lower().replace("’", "'"), []).append(_Alias(name, ticker, kind, **_parse_context(ctx)))
        for name, ticker in (user_aliases or {}).items():
            name, ticker = name.strip(), ticker.strip().upper()
            if not name:
                continue
            key = name.lower().replace("’", "'")
            if ticker in ("", "-"):  # the user removes a name
                table[key] = [_Alias(name, "-", "X")]
            else:
                table[key] = [_Alias(name, self.symbols.get(ticker, ticker), "U")]
        self._table = table
        # the automaton holds " word-mapped key " (punctuation -> space, see _boundaries), so it only
        # reports whole-word matches; the key itself is checked against the text afterwards
        self._auto = ahocorasick.Automaton()
        for key in table:
            bounded = f" {key.translate(_BOUNDARY)} "
            found = self._auto.get(bounded, None)
            self._auto.add_word(bounded, (found or ()) + (key,))
        if table:
            self._auto.make_automaton()

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_csv(cls, path: str | Path, watchlist: Iterable[str] | None = None) -> "Linker":
        """The shipped table extended by the user's alias CSV ``ticker,alias``."""
        return cls(read_user_aliases(path), watchlist=watchlist)

    def in_watchlist(self, ticker: str) -> bool:
        return self.watchlist is None or ticker in self.watchlist

    def canonical(self, symbol: str) -> str | None:
        return self.symbols.get(symbol.upper())

    # ------------------------------------------------------------------ linking
    def extract(self, text: str) -> list[str]:
        """The ticker of every link in ``text``, in text order (the old ``TickerExtractor`` interface)."""
        return [link.ticker for link in self.link(text)]

    def link(self, text: str) -> list[Link]:
        if not isinstance(text, str) or not text:
            return []
        if "&" in text and ";" in text:
            text = html.unescape(text)  # "AT&amp;T" in scraped feeds; spans refer to the unescaped text
        links: list[Link] = []
        taken: list[tuple[int, int]] = []
        for m in (_CASHTAG.finditer(text) if "$" in text else ()):
            sym = m.group(1).upper()
            links.append(Link(self.symbols.get(sym, sym), m.start(), m.end(), m.group(0), "cashtag"))
            taken.append((m.start(), m.end()))
        for m in (_EXCHANGE_TAG.finditer(text) if ":" in text else ()):
            sym = m.group(1).upper()
            if m.group(1).isupper() and not _overlaps(taken, m.start(1), m.end(1)):
                links.append(Link(self.symbols.get(sym, sym), m.start(), m.end(), m.group(0), "exchange"))
                taken.append((m.start(), m.end()))
        for m in (_LISTED.finditer(text) if "-listed" in text else ()):
            sym = m.group(1).split()[0]
            if sym.isupper() and sym in self.symbols and sym not in NOT_SYMBOLS and not _overlaps(taken, m.start(1), m.end(1)):
                links.append(Link(self.symbols[sym], m.start(), m.start(1) + len(sym), text[m.start():m.start(1) + len(sym)], "exchange"))
                taken.append((m.start(1), m.start(1) + len(sym)))
        caps_text = _mostly_caps(text)
        if not caps_text:
            for m in (_PAREN.finditer(text) if "(" in text else ()):
                sym = m.group(1)
                if sym in self.symbols and sym not in NOT_SYMBOLS and not _overlaps(taken, m.start(1), m.end(1)):
                    links.append(Link(self.symbols[sym], m.start(1) - 1, m.end(1) + 1, f"({sym})", "paren"))
                    taken.append((m.start(1) - 1, m.end(1) + 1))
            for m in (_LIST.finditer(text) if ("," in text or " and " in text or "&" in text) else ()):
                toks = [(t.group(0), m.start() + t.start()) for t in _LIST_TOKEN.finditer(m.group(0))]
                if len({t for t, _ in toks}) >= 2 and all(t in self.symbols and t not in NOT_SYMBOLS for t, _ in toks):
                    for t, s in toks:
                        if not _overlaps(taken, s, s + len(t)):
                            links.append(Link(self.symbols[t], s, s + len(t), t, "symbol_list"))
                            taken.append((s, s + len(t)))
        confirmed = {lk.ticker for lk in links}
        links.extend(self._names(text, taken, caps_text, confirmed))
        links.sort(key=lambda lk: lk.start)
        return links

    def _names(self, text: str, taken: list[tuple[int, int]], caps_text: bool, confirmed: set[str]) -> list[Link]:
        if not self._table:
            return []
        low = _fold_text(text)
        cands: list[tuple[int, int, str]] = []
        for end, keys in self._auto.iter(f" {low.translate(_BOUNDARY)} "):
            for key in keys:
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
            entries = self._table[key]
            if any(e.kind == "X" for e in entries):
                if _case_ok(entries[0].name, span):
                    last_end = end  # a blocking phrase ("United States") consumes its words
                continue
            if title_text is None:
                title_text = _title_case(text)
            for e in entries:
                rule = self._accept(e, text, start, end, span, caps_text, title_text, confirmed)
                if rule:
                    out.append(Link(e.ticker, start, end, span, rule))
                    last_end = end
                    break
        return out

    def _accept(self, e: _Alias, text: str, start: int, end: int, span: str, caps_text: bool,
                title_text: bool, confirmed: set[str]) -> str | None:
        if e.kind == "U":
            return "alias"
        if e.kind == "C":
            if span != e.name:
                return None
            if caps_text and len(e.name) < 3:
                return None
            return "acronym"
        if not _case_ok(e.name, span):
            return None
        if e.kind == "N":
            if caps_text and len(e.name) < 4:
                return None
            return "name"
        prev = _prev_word(text, start)
        nxt, possessive = _next_word(text, end)
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
        if prev in e.reject_prev or nxt in e.reject_next:
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
def shipped_table() -> tuple[tuple[tuple[str, str, str, str], ...], dict[str, str]]:
    """The committed alias table and symbol map (read once per process)."""
    aliases = tuple((r[0], r[1], r[2], r[3] if len(r) > 3 else "") for r in _read_tsv(HERE / "aliases.tsv") if len(r) >= 3)
    symbols = {r[0]: r[1] for r in _read_tsv(HERE / "symbols.tsv") if len(r) >= 2}
    return aliases, symbols


def symbol_ranks() -> dict[str, int]:
    """Canonical ticker -> rank in the SEC list (1 = largest issuer), for the ``topN`` watchlists."""
    ranks: dict[str, int] = {}
    for r in _read_tsv(HERE / "symbols.tsv"):
        if len(r) >= 4:
            ranks.setdefault(r[1], int(r[3]))
    return ranks


def read_user_aliases(path: str | Path) -> dict[str, str]:
    """The user's CSV ``ticker,alias`` (header optional); ticker ``-`` removes a shipped name."""
    aliases: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if len(row) < 2 or not row[0].strip() or row[0].strip().lower() == "ticker":
                continue
            aliases[row[1].strip()] = row[0].strip()
    return aliases
