"""The news.raw message: parsing, validation, stable ids, tickers (and the links found at ingest), model text.

Pure code (no I/O): a raw Kafka record value goes in, a :class:`NewsItem` or an
:class:`InvalidRecord` (with a machine-readable reason) comes out.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import orjson

from stream.base.labels import TOPICS
from stream.linking import Link, Linker, default_linker
from stream.messages.text import has_visible, model_input

MAX_RECORD_BYTES = 1 << 20  # 1 MiB
MAX_TITLE_CHARS = 2000
MIN_PUBLISHED = datetime(1990, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(days=1)
KNOWN_FIELDS = ("id", "published_at", "title", "summary", "source", "url", "tickers", "links", "links_version")
# Caps that make validation total (any bytes -> NewsItem or InvalidRecord) and keep what is
# accepted storable in PostgreSQL text/jsonb and encodable as UTF-8 (see parse_record).
MAX_JSON_DEPTH = 32  # nested objects/arrays ("too_deep")
MAX_JSON_VALUES = 10_000  # keys + values in the whole record ("too_many_fields")
MAX_INT_DIGITS = 64  # longer integer literals are refused ("bad_number")
MAX_ID_CHARS = 256  # ids are primary keys: btree entries must stay small ("bad_id")
MAX_TICKERS = 100  # given tickers per item ("too_many_tickers"); also the most CIKs per item
# Optional fields a source that knows better than the text may give; kept in ``extra`` (and so in
# articles.extra), read here:
#   ciks: SEC company ids of the companies the item is about (EDGAR filings): each links the ticker the
#         shipped reference gives it, rule "cik", spanning the company's name in the text;
#   given_topic: one of the 20 topics, stored instead of the model's (EDGAR: from the 8-K item table);
#   flags: short words an alert shows beside the headline (EDGAR: "bankruptcy" for 8-K item 1.03).
CIKS_FIELD, TOPIC_FIELD, FLAGS_FIELD = "ciks", "given_topic", "flags"
# Links found at ingest travel with the message: ``links`` (every link but the given tickers', as
# ``Link.as_dict()``) and ``links_version`` (the linker's reference version, ``Linker.version``).  A consumer
# whose linker has that version takes them as they are; one with another version, or a message without
# them, links the text itself.  Carried links that are not well formed are ignored (the text is linked).
LINKS_FIELD, LINKS_VERSION_FIELD = "links", "links_version"
CARRIED_RULES = frozenset({"cashtag", "exchange", "paren", "symbol_list", "name", "acronym", "alias", "cik"})
CARRIED_KEYS = ("ticker", "start", "end", "text", "rule", "entity")


class InvalidRecord(ValueError):
    """A record that cannot be accepted; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class NewsItem:
    id: str
    published_at: datetime  # timezone-aware, UTC
    title: str
    summary: str | None = None
    source: str | None = None
    url: str | None = None
    tickers: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    ticker_links: tuple[dict[str, Any], ...] = ()  # why each ticker is there (span, text, rule)
    links_version: str | None = None  # the version of the linker that found them (None: unknown)

    @cached_property
    def model_text(self) -> str:  # read by the model and by story marking: made once
        return model_text(self.title, self.summary)

    def to_message(self) -> dict[str, Any]:
        """The news.raw JSON form of this item (extra fields kept)."""
        msg: dict[str, Any] = dict(self.extra)
        msg.update(id=self.id, published_at=format_time(self.published_at), title=self.title)
        for key in ("summary", "source", "url"):
            if getattr(self, key) is not None:
                msg[key] = getattr(self, key)
        # the message's own tickers, then (when the linker's version is known) the links found in its text
        given = [lk["ticker"] for lk in self.ticker_links if lk.get("rule") == "given"] \
            if self.ticker_links else list(self.tickers)
        if given:
            msg["tickers"] = given
        if self.links_version is not None:
            msg[LINKS_FIELD] = [{k: lk[k] for k in CARRIED_KEYS if k in lk}
                                for lk in self.ticker_links if lk.get("rule") != "given"]
            msg[LINKS_VERSION_FIELD] = self.links_version
        return msg


# --------------------------------------------------------------------------- text
_TAG = re.compile(r"<[^>]{0,500}>")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Text for ids and validation: HTML entities decoded, tags and URLs removed, whitespace folded.

    Not the model's input: that is :func:`model_text` (``stream.messages.text.model_input``)."""
    text = html.unescape(text)
    text = _TAG.sub(" ", text)
    text = _URL.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def model_text(title: str, summary: str | None = None) -> str:
    """What the model reads: the one input contract, shared with training, classify and rescore."""
    return model_input(title, summary)


# --------------------------------------------------------------------------- ids and time
def stable_id(source: str | None, url: str | None, title: str) -> str:
    """Deterministic id for a message without one: hash of source + url (or title)."""
    basis = f"{source or ''}\x1f{url or normalize_text(title).lower()}"
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]


def parse_published_at(value: Any, *, now: datetime | None = None) -> datetime:
    if not isinstance(value, str):
        raise InvalidRecord("bad_type", f"published_at must be an RFC 3339 string, got {type(value).__name__}")
    text = value.strip()
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRecord("bad_timestamp", f"cannot parse published_at {value[:64]!r}") from None
    if ts.tzinfo is None:  # scraped data often omits the offset: read it as UTC
        ts = ts.replace(tzinfo=UTC)
    try:
        ts = ts.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-23:59
        raise InvalidRecord("absurd_timestamp", f"published_at {value[:64]!r} is out of range") from None
    now = now or datetime.now(UTC)
    if ts < MIN_PUBLISHED:
        raise InvalidRecord("absurd_timestamp", f"published_at {text} is before 1990")
    if ts > now + MAX_FUTURE:
        raise InvalidRecord("absurd_timestamp", f"published_at {text} is more than a day in the future")
    return ts


def json_bytes(obj: Any) -> bytes:
    """Compact UTF-8 JSON (orjson); what orjson refuses (a str subclass, a lone surrogate) goes the slow way.
    Other scalars a replayed row may hold (dates, decimals) are written with ``str()``."""
    try:
        return orjson.dumps(obj, default=str, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except TypeError:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def format_time(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- tickers
_TICKER_OK = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,14}$")


# The entity linker (stream.linking) replaces the old cashtag + alias extractor: same name and
# interface (``TickerExtractor(aliases)``, ``.from_csv(path)``, ``.extract(text)``), plus names,
# brands, exchange tags and symbol lists from the shipped reference, and ``.link(text)`` with spans.
TickerExtractor = Linker


def merge_tickers(*groups: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for group in groups:
        for t in group:
            t = t.strip().lstrip("$").upper()
            if t and _TICKER_OK.match(t):
                seen.setdefault(t, None)
    return tuple(seen)


# --------------------------------------------------------------------------- parsing
def _opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRecord("bad_type", f"{key} must be a string, got {type(value).__name__}")
    value = value.strip()
    return value if value and _has_visible(value) else None


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _clean_str(text: str) -> str:
    """PostgreSQL text/jsonb cannot hold U+0000 and UTF-8 cannot encode a lone surrogate
    (``"\\ud800"`` in JSON): both are dropped (else they are poison pills later)."""
    if text.isascii():
        return text.replace("\x00", "") if "\x00" in text else text
    return _UNSTORABLE.sub("", text)


def _sanitize(value: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """A storable copy of a decoded JSON value (or a replayed row).

    Strings lose NUL and lone surrogates; non-finite floats (NaN, Infinity, 1e400) become
    null, as jsonb has no such numbers; integers longer than MAX_INT_DIGITS, nesting deeper
    than MAX_JSON_DEPTH and more than MAX_JSON_VALUES keys+values are refused.
    """
    if budget is None:
        budget = [MAX_JSON_VALUES]
    if isinstance(value, str):
        return _clean_str(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_DIGITS * 10 // 3:
            raise InvalidRecord("bad_number", f"an integer has more than {MAX_INT_DIGITS} digits")
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dict, list, tuple)):
        if depth >= MAX_JSON_DEPTH:
            raise InvalidRecord("too_deep", f"nested deeper than {MAX_JSON_DEPTH} levels")
        budget[0] -= len(value) * (2 if isinstance(value, dict) else 1)
        if budget[0] < 0:
            raise InvalidRecord("too_many_fields", f"more than {MAX_JSON_VALUES} keys and values")
        if isinstance(value, dict):
            return {_clean_str(k if isinstance(k, str) else str(k)): _sanitize(v, depth + 1, budget)
                    for k, v in value.items()}
        return [_sanitize(v, depth + 1, budget) for v in value]
    return value  # other scalars from replayed rows (dates, decimals): stored with str()


_has_visible = has_visible  # one definition of "nothing visible", shared with the model input


def parse_message(
    obj: Any, *, extractor: TickerExtractor | None = None, now: datetime | None = None
) -> NewsItem:
    """Validate a decoded news.raw JSON value."""
    if not isinstance(obj, dict):
        raise InvalidRecord("not_object", f"expected a JSON object, got {type(obj).__name__}")
    obj = _sanitize(obj)
    title = obj.get("title")
    if title is None:
        raise InvalidRecord("missing_title", "title is required")
    if not isinstance(title, str):
        raise InvalidRecord("bad_type", f"title must be a string, got {type(title).__name__}")
    title = title.strip()
    if not title or not _has_visible(normalize_text(title)):
        raise InvalidRecord("empty_title", "title is empty (after normalisation)")
    if len(title) > MAX_TITLE_CHARS:
        raise InvalidRecord("oversized", f"title has {len(title)} characters (max {MAX_TITLE_CHARS})")
    if "published_at" not in obj or obj["published_at"] in (None, ""):
        raise InvalidRecord("missing_published_at", "published_at is required")
    published = parse_published_at(obj["published_at"], now=now)
    summary, source, url = _opt_str(obj, "summary"), _opt_str(obj, "source"), _opt_str(obj, "url")
    raw_id = obj.get("id")
    if raw_id is not None and not isinstance(raw_id, str):
        raise InvalidRecord("bad_type", f"id must be a string, got {type(raw_id).__name__}")
    item_id = (raw_id or "").strip() or stable_id(source, url, title)
    if len(item_id) > MAX_ID_CHARS:
        raise InvalidRecord("bad_id", f"id has {len(item_id)} characters (max {MAX_ID_CHARS})")
    tickers = obj.get("tickers") or []
    if isinstance(tickers, str):  # "AAPL,MSFT" is common in CSV exports
        tickers = [t for t in re.split(r"[,\s;]+", tickers) if t]
    if not isinstance(tickers, list) or not all(isinstance(t, str) for t in tickers):
        raise InvalidRecord("bad_type", "tickers must be a list of strings")
    if len(tickers) > MAX_TICKERS:
        raise InvalidRecord("too_many_tickers", f"{len(tickers)} tickers given (max {MAX_TICKERS})")
    ciks = _ciks(obj.get(CIKS_FIELD))
    given_topic(obj)  # a given topic must be one of the topics
    _flags(obj.get(FLAGS_FIELD))
    extractor = extractor or default_linker()
    text = f"{title} {summary or ''}"
    extra = {k: v for k, v in obj.items() if k not in KNOWN_FIELDS}
    version = getattr(extractor, "version", None)
    carried = carried_links(obj, version, len(text))
    linked, links = link_tickers(extractor, tickers, text, at=published, ciks=ciks, carried=carried)
    return NewsItem(
        id=item_id, published_at=published, title=title, summary=summary, source=source, url=url,
        tickers=linked, extra=extra, ticker_links=links, links_version=version,
    )


def carried_links(obj: Mapping[str, Any], version: str | None, text_len: int) -> list[dict] | None:
    """The links a message carries, when they were found by a linker of ``version`` and are well formed
    (known rules, spans inside the text); None otherwise: the text is then linked again."""
    if version is None or obj.get(LINKS_VERSION_FIELD) != version:
        return None
    links = obj.get(LINKS_FIELD)
    if not isinstance(links, list) or len(links) > MAX_TICKERS * 2:
        return None
    out = []
    for lk in links:
        if not isinstance(lk, dict) or lk.get("rule") not in CARRIED_RULES or not isinstance(lk.get("ticker"), str):
            return None
        start, end = lk.get("start"), lk.get("end")
        if type(start) is not int or type(end) is not int or not 0 <= start <= end <= text_len:
            return None
        if not isinstance(lk.get("text"), str) or not isinstance(lk.get("entity", ""), str):
            return None
        out.append({k: lk[k] for k in CARRIED_KEYS if k in lk})
    return out


def _ciks(value: Any) -> tuple[str, ...]:
    """The ``ciks`` field: a list of SEC CIKs (digit strings or integers)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(c, (str, int)) and not isinstance(c, bool) for c in value):
        raise InvalidRecord("bad_type", "ciks must be a list of SEC CIKs (digit strings or integers)")
    if len(value) > MAX_TICKERS:
        raise InvalidRecord("too_many_tickers", f"{len(value)} CIKs given (max {MAX_TICKERS})")
    return tuple(str(c).strip() for c in value)


def _flags(value: Any) -> None:
    if value is not None and (not isinstance(value, list) or not all(isinstance(f, str) for f in value)):
        raise InvalidRecord("bad_type", "flags must be a list of strings")


def given_topic(extra: Mapping[str, Any]) -> str | None:
    """The topic a source gives (``given_topic``: one of the 20 topics), None when it gives none;
    any other value is an :class:`InvalidRecord` (``bad_topic``)."""
    value = extra.get(TOPIC_FIELD)
    if value is None:
        return None
    if not isinstance(value, str) or value not in TOPICS:
        raise InvalidRecord("bad_topic", f"{TOPIC_FIELD} must be one of the topics ({', '.join(TOPICS)}), "
                                         f"got {str(value)[:80]!r}")
    return value


def link_tickers(linker: Linker, given: Iterable[str], text: str, at: datetime | str | None = None,
                 found: Iterable[Link] | None = None, ciks: Iterable[str] = (), carried: Iterable[dict] | None = None
                 ) -> tuple[tuple[str, ...], tuple[dict, ...]]:
    """(tickers in the watchlist, every link as a dict) for the message's tickers, its CIKs and its
    text, read as of ``at`` (the publication time: the names and symbols in use then).

    Given tickers come first (rule ``given``), then the companies named by CIK (rule ``cik``: their
    span is no longer searched for names); a link outside the linker's watchlist is kept with
    ``"watch": false`` but its ticker is left out of the returned tickers.  ``found``: the text's
    links when the caller has them already (``linker.link(text, at)``); ``carried``: every link but the given
    tickers', as a linker of the same version found them (the message's ``links``): nothing is linked again."""
    given = merge_tickers(given)
    links = [{"ticker": linker.canonical(t) or t, "rule": "given"} for t in given]
    if carried is not None:
        links += [dict(lk) for lk in carried]
    else:
        links += _text_links(linker, text, at, found, ciks)
    for lk in links:
        if not linker.in_watchlist(lk["ticker"]):
            lk["watch"] = False
    tickers = merge_tickers(lk["ticker"] for lk in links if lk.get("watch", True))
    return tickers, tuple(links)


def _text_links(linker: Linker, text: str, at: datetime | str | None, found: Iterable[Link] | None,
                ciks: Iterable[str]) -> list[dict]:
    """The companies named by CIK (their span is no longer searched for names), then the text's links."""
    by_cik = [lk.as_dict() for lk in linker.link_ciks(ciks, text)] if ciks else []
    found = [lk.as_dict() for lk in (linker.link(text, at) if found is None else found) if lk.ticker is not None]
    if by_cik:
        spans = [(lk["start"], lk["end"]) for lk in by_cik if lk["end"] > lk["start"]]
        found = [lk for lk in found if not any(lk["start"] < e and s < lk["end"] for s, e in spans)]
    return by_cik + found


def parse_record(
    raw: bytes | None, *, extractor: TickerExtractor | None = None, now: datetime | None = None
) -> NewsItem:
    """Validate the raw bytes of a news.raw record."""
    if raw is None:
        raise InvalidRecord("empty", "record has no value")
    if len(raw) > MAX_RECORD_BYTES:
        raise InvalidRecord("oversized", f"record is {len(raw)} bytes (max {MAX_RECORD_BYTES})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRecord("not_utf8", str(exc)) from None
    try:
        obj = json.loads(text.removeprefix("\ufeff"), parse_int=_json_int, parse_constant=_json_constant,
                         parse_float=_json_float)
    except InvalidRecord:
        raise
    except RecursionError:  # a nesting bomb: the C decoder stops at the recursion limit
        raise InvalidRecord("too_deep", f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError and anything else the decoder refuses
        raise InvalidRecord("not_json", str(exc)[:200]) from None
    return parse_message(obj, extractor=extractor, now=now)


def _json_int(digits: str) -> int:
    # before int(): Python refuses > 4300 digits with a ValueError, jsonb takes far more than we want
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise InvalidRecord("bad_number", f"an integer has {len(digits.lstrip('-'))} digits (max {MAX_INT_DIGITS})")
    return int(digits)


def _json_float(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None  # 1e400 overflows to inf: jsonb has no inf


def _json_constant(name: str) -> None:
    return None  # NaN, Infinity, -Infinity: not JSON, and jsonb cannot hold them -> null

