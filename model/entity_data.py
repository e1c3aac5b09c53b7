"""Training and evaluation data for sentiment toward named entities (``finsent train-entities``).

Three sources, each an :class:`EntityText` (model text + labelled entities with their spans):

* **SEntFiN 1.0** (``targeted/sentfin.jsonl``, MIT): 10,753 headlines, a label per entity as written.
  Split by headline, seeded, stratified by whether the headline's entities disagree, so both the
  validation part and the training part hold the hard cases.  Entities whose name is not in the text
  (19) are dropped.
* **Weak labels on the headline sets** (TFNS, FPB training parts): a text whose linker finds exactly one
  company gives that company the headline's label.  These are US (and Nordic) texts in the register the
  product reads: they keep the head from learning SEntFiN's Indian vocabulary alone.
* **Analyst calls** (:func:`analyst_roles`): in "Piper Sandler downgrades DocuSign", "Funko price target cut at
  Stifel" the broker is not what the news is about: the broker gets neutral and the one company covered
  gets the headline's label (the gold label on the sentiment sets, the init model's on the topic set).
  A broker is a name of :data:`BROKERS` in a text with an analyst word (:data:`ANALYST_CUE`).
* **Contrast pairs** (optional, ``contrast``): two such single-company TFNS texts of opposite labels
  joined in one line ("A ...; B ..."), each company keeping its own label: more examples of the case a
  headline-level model gets wrong.

A hand-labelled evaluation set (``bench/entity_dev_us.jsonl``) reads through :func:`read_entity_jsonl`, the
same format as SEntFiN plus a ``source``.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from model.entities import Span, find_mentions
from stream.base.errors import UserError
from stream.base.labels import SENTIMENTS
from stream.messages.text import model_input

SENTFIN_FILE = "targeted/sentfin.jsonl"


@dataclass(frozen=True)
class LabelledEntity:
    name: str
    spans: tuple[Span, ...]
    label: int  # index into SENTIMENTS


@dataclass
class EntityText:
    text: str  # the model text (model_input)
    entities: list[LabelledEntity]
    source: str = "sentfin"
    meta: dict = field(default_factory=dict)

    @property
    def disagree(self) -> bool:
        """The text's entities do not all share one label (the case a headline-level label gets wrong)."""
        return len({e.label for e in self.entities}) > 1


def _label(value: str) -> int:
    v = str(value).strip().lower()
    if v not in SENTIMENTS:
        raise UserError(f"unknown entity sentiment {value!r}: use {', '.join(SENTIMENTS)}")
    return SENTIMENTS.index(v)


def read_entity_jsonl(path: Path, source: str | None = None) -> list[EntityText]:
    """Lines ``{"text", "entities": {name: label}}`` (SEntFiN's format) -> :class:`EntityText` on the model text;
    entities whose name the text does not contain are dropped (they have no span to pool)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    out: list[EntityText] = []
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                text = model_input(row["text"])
                ents = []
                for name, label in row["entities"].items():
                    spans = find_mentions(text, name)
                    if spans:
                        ents.append(LabelledEntity(name, spans, _label(label)))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise UserError(f"{path}:{n}: not an entity line ({exc})") from None
            if ents:
                out.append(EntityText(text, ents, source or row.get("source") or path.stem,
                                      {k: v for k, v in row.items() if k not in ("text", "entities")}))
    return out


def split_by_text(rows: Sequence[EntityText], val_fraction: float, seed: int) -> tuple[list[EntityText],
                                                                                        list[EntityText]]:
    """(train, val): by text, seeded, stratified by :attr:`EntityText.disagree`; duplicate texts stay together."""
    groups: dict[str, list[EntityText]] = {}
    for r in rows:
        groups.setdefault(" ".join(r.text.lower().split()), []).append(r)
    rng = random.Random(seed)
    train: list[EntityText] = []
    val: list[EntityText] = []
    for hard in (False, True):
        keys = sorted(k for k, g in groups.items() if any(r.disagree for r in g) == hard)
        rng.shuffle(keys)
        cut = round(len(keys) * val_fraction)
        for i, k in enumerate(keys):
            (val if i < cut else train).extend(groups[k])
    return train, val


def weak_labels(texts: Iterable[str], labels: Iterable[int], source: str, linker) -> list[EntityText]:
    """Texts (model text) whose linker finds exactly one company (listed or unlisted): that company gets the
    text's sentiment label.  ``linker``: a :class:`stream.linking.Linker`."""
    out = []
    for text, label in zip(texts, labels):
        links = linker.link(text, unlisted=True)
        who = {lk.ticker or lk.entity for lk in links}
        if len(who) != 1:
            continue
        spans = tuple((lk.start, lk.end) for lk in links if text[lk.start:lk.end] == lk.text)
        if spans:
            out.append(EntityText(text, [LabelledEntity(links[0].text, spans, int(label))], source))
    return out


# Sell-side brokers and research houses whose names lead or close analyst-call headlines (as written in
# US financial news); a name here is neutral in a text with an analyst word.
BROKERS = (
    "Goldman Sachs", "Goldman", "JPMorgan", "JP Morgan", "J.P. Morgan", "Morgan Stanley", "Citigroup", "Citi",
    "Bank of America", "BofA Securities", "BofA Merrill Lynch", "BofA", "Merrill Lynch", "Barclays", "UBS",
    "Credit Suisse", "Deutsche Bank", "Jefferies", "Wells Fargo", "Wells", "RBC Capital Markets", "RBC Capital",
    "RBC", "Piper Sandler", "Piper Jaffray", "Raymond James", "Stifel Nicolaus", "Stifel", "Cowen", "Oppenheimer",
    "KeyBanc", "Baird", "Needham", "Wedbush", "Mizuho", "BMO Capital", "BMO", "Evercore ISI", "Evercore",
    "Bernstein", "Truist", "SunTrust Robinson Humphrey", "SunTrust", "Guggenheim", "Loop Capital", "Benchmark",
    "Argus", "Susquehanna", "Rosenblatt Securities", "Rosenblatt", "D.A. Davidson", "DA Davidson",
    "Canaccord Genuity", "Canaccord", "HSBC", "Nomura", "Macquarie", "CFRA", "Morningstar", "Edward Jones",
    "Wolfe Research", "Wolfe", "Berenberg", "Cantor Fitzgerald", "Cantor", "H.C. Wainwright", "HC Wainwright",
    "Ladenburg Thalmann", "B. Riley", "B Riley", "Roth Capital", "Craig-Hallum", "Maxim Group", "Northland",
    "JMP Securities", "William Blair", "Telsey Advisory", "Telsey", "MKM Partners", "BTIG", "Compass Point", "KBW",
    "Keefe Bruyette", "Seaport Global", "Instinet", "Daiwa", "CLSA", "Redburn", "Kepler Cheuvreux",
    "Societe Generale", "BNP Paribas", "Exane", "Atlantic Equities", "Bank of America Securities",
)
ANALYST_CUE = re.compile(
    r"\b(?:upgrade[sd]?|downgrade[sd]?|price target|PT|target|rating|initiat\w*|reiterat\w*|outperform|"
    r"underperform|overweight|underweight|equal[- ]weight|market perform|buy|sell|hold|neutral|analysts?|"
    r"coverage|says|said|sees|raises?|raised|cuts?|lowers?|lowered|lifts?|trims?|slash\w*|bullish|bearish|"
    r"top pick|upside|downside)\b", re.IGNORECASE)
_BROKER = re.compile(r"(?<![\w.])(?:" + "|".join(re.escape(b) for b in sorted(BROKERS, key=len, reverse=True))
                     + r")(?:'s|’s)?(?!\w)")


def analyst_roles(text: str, linker) -> tuple[list[Span], list[tuple[str, tuple[Span, ...]]]] | None:
    """``(broker spans, [(company, its spans)])`` of an analyst-call text with one broker, else None.

    The companies are the text's other linked companies (listed or unlisted), each with all its mentions."""
    if not ANALYST_CUE.search(text):
        return None
    found = [(m.start(), m.end() - (2 if m.group().endswith(("'s", "’s")) else 0)) for m in _BROKER.finditer(text)]
    names = {text[a:b].lower() for a, b in found}
    if len(names) != 1:
        return None
    companies: dict[str, list[Span]] = {}
    for lk in linker.link(text, unlisted=True):
        if any(a < lk.end and lk.start < b for a, b in found):
            continue
        companies.setdefault(lk.ticker or lk.entity or lk.text, []).append((lk.start, lk.end))
    out = []
    for spans in companies.values():
        name = text[spans[0][0]:spans[0][1]]
        out.append((name, tuple(sorted(set(spans) | set(find_mentions(text, name))))))
    return found, out


JOINERS = ("; ", ", while ", " as ", ", but ", " - ", ", ")
_LINK_END = re.compile(r"(?:\s*https://t\.co)+\s*$")


def contrast_pairs(singles: Sequence[EntityText], n: int, seed: int) -> list[EntityText]:
    """``n`` texts made of a positive and a negative single-company text ("A rises, while B falls"), each
    company keeping its own label and span: the clauses joined by one of :data:`JOINERS`, trailing link
    tokens and final punctuation of the first clause dropped; short texts (up to 14 words) are preferred,
    as two-company headlines are short."""
    def short(rows: list[EntityText]) -> list[EntityText]:
        kept = [r for r in rows if len(_LINK_END.sub("", r.text).split()) <= 14]
        return kept or rows

    pos = short([s for s in singles if s.entities[0].label == SENTIMENTS.index("positive")])
    neg = short([s for s in singles if s.entities[0].label == SENTIMENTS.index("negative")])
    if not pos or not neg or n <= 0:
        return []
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.choice(pos), rng.choice(neg)
        if a.entities[0].name.lower() == b.entities[0].name.lower():
            continue
        if rng.random() < 0.5:
            a, b = b, a
        first = _LINK_END.sub("", a.text).rstrip(" .;:!")
        second = _LINK_END.sub("", b.text)
        if any(e > len(first) for _, e in a.entities[0].spans) or any(e > len(second) for _, e in b.entities[0].spans):
            continue
        joiner = rng.choice(JOINERS)
        shift = len(first) + len(joiner)
        ents = [a.entities[0], LabelledEntity(b.entities[0].name,
                                              tuple((s + shift, e + shift) for s, e in b.entities[0].spans),
                                              b.entities[0].label)]
        out.append(EntityText(f"{first}{joiner}{second}", ents, "contrast"))
    return out
