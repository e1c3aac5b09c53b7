"""SEC EDGAR filings as news (pure): the current-filings Atom entries -> news.raw messages.

EDGAR's ``browse-edgar?action=getcurrent&type=8-K&output=atom`` lists the latest filings, one entry per
filer of each filing::

    <title>8-K - Apple Inc. (0000320193) (Filer)</title>
    <summary type="html"> &lt;b&gt;Filed:&lt;/b&gt; 2024-08-01 &lt;b&gt;AccNo:&lt;/b&gt; 0000320193-24-000081
      &lt;b&gt;Size:&lt;/b&gt; 2 MB&lt;br&gt;Item 2.02: Results of Operations and Financial Condition ...</summary>
    <id>urn:tag:sec.gov,2008:accession-number=0000320193-24-000081</id>

A filing with co-registrants (a utility and its parent) has one entry per filer with the same accession
number: they become one article naming every filer.  The article:

* ``id`` ``sec-<accession number>`` (one filing is one article, whichever poll saw it);
* ``title``: a sentence the model reads, from the company, the form and the items ("Apple files an 8-K on
  results of operations and financial condition");
* ``ciks``: the filers, linked to their tickers through the shipped SEC reference (rule ``cik``);
* ``given_topic``: the topic of the 8-K items (:data:`ITEMS`), ``flags`` (1.03 -> ``bankruptcy``);
* ``filing``: form, accession number, filing date, companies, items and the raw entries.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stream.linking.names import company_name

SOURCE = "SEC EDGAR"


@dataclass(frozen=True)
class Item:
    """An 8-K item: its official title, the phrase the headline uses, its topic (one of the 20, or None)
    and the flag it raises (shown by an alert beside the headline)."""

    title: str
    phrase: str
    topic: str | None
    flag: str | None = None
    generic: bool = False  # a topic only when the filing has no other item with one


# Form 8-K's items (the SEC's General Instructions B and the form itself) -> topics.  The one table: the
# README's "8-K items" section is this table.
ITEMS: dict[str, Item] = {
    "1.01": Item("Entry into a Material Definitive Agreement", "a material definitive agreement",
                 "Company, Product News"),
    "1.02": Item("Termination of a Material Definitive Agreement", "the termination of a material agreement",
                 "Company, Product News"),
    "1.03": Item("Bankruptcy or Receivership", "bankruptcy or receivership", "Legal, Regulation", "bankruptcy"),
    "1.04": Item("Mine Safety - Reporting of Shutdowns and Patterns of Violations", "a mine safety shutdown",
                 "Legal, Regulation"),
    "1.05": Item("Material Cybersecurity Incidents", "a material cybersecurity incident", "Company, Product News",
                 "cybersecurity_incident"),
    "2.01": Item("Completion of Acquisition or Disposition of Assets", "a completed acquisition or disposition",
                 "M&A, Investments"),
    "2.02": Item("Results of Operations and Financial Condition", "results of operations and financial condition",
                 "Earnings"),
    "2.03": Item("Creation of a Direct Financial Obligation or an Obligation under an Off-Balance Sheet "
                 "Arrangement of a Registrant", "a new financial obligation", "Treasuries, Corporate Debt"),
    "2.04": Item("Triggering Events That Accelerate or Increase a Direct Financial Obligation or an Obligation "
                 "under an Off-Balance Sheet Arrangement", "an accelerated financial obligation",
                 "Treasuries, Corporate Debt", "debt_acceleration"),
    "2.05": Item("Costs Associated with Exit or Disposal Activities", "exit or disposal costs",
                 "Company, Product News"),
    "2.06": Item("Material Impairments", "material impairments", "Earnings"),
    "3.01": Item("Notice of Delisting or Failure to Satisfy a Continued Listing Rule or Standard; Transfer of "
                 "Listing", "a delisting notice or listing transfer", "Legal, Regulation", "delisting"),
    "3.02": Item("Unregistered Sales of Equity Securities", "unregistered sales of equity", "Financials"),
    "3.03": Item("Material Modification to Rights of Security Holders", "changed rights of security holders",
                 "Legal, Regulation"),
    "4.01": Item("Changes in Registrant's Certifying Accountant", "a change of auditor", "Financials"),
    "4.02": Item("Non-Reliance on Previously Issued Financial Statements or a Related Audit Report or Completed "
                 "Interim Review", "non-reliance on earlier financial statements", "Earnings", "restatement"),
    "5.01": Item("Changes in Control of Registrant", "a change in control", "M&A, Investments"),
    "5.02": Item("Departure of Directors or Certain Officers; Election of Directors; Appointment of Certain "
                 "Officers; Compensatory Arrangements of Certain Officers",
                 "departures or appointments of directors or officers", "Personnel Change"),
    "5.03": Item("Amendments to Articles of Incorporation or Bylaws; Change in Fiscal Year",
                 "amended articles or bylaws", "Legal, Regulation"),
    "5.04": Item("Temporary Suspension of Trading Under Registrant's Employee Benefit Plans",
                 "a trading suspension under employee benefit plans", "Legal, Regulation"),
    "5.05": Item("Amendment to Registrant's Code of Ethics, or Waiver of a Provision of the Code of Ethics",
                 "its code of ethics", "Legal, Regulation"),
    "5.06": Item("Change in Shell Company Status", "a change in shell company status", "M&A, Investments"),
    "5.07": Item("Submission of Matters to a Vote of Security Holders", "a shareholder vote",
                 "Company, Product News"),
    "5.08": Item("Shareholder Director Nominations", "shareholder director nominations", "Personnel Change"),
    "6.01": Item("ABS Informational and Computational Material", "asset-backed securities material",
                 "Treasuries, Corporate Debt"),
    "6.02": Item("Change of Servicer or Trustee", "a change of servicer or trustee", "Treasuries, Corporate Debt"),
    "6.03": Item("Change in Credit Enhancement or Other External Support", "a change in credit enhancement",
                 "Treasuries, Corporate Debt"),
    "6.04": Item("Failure to Make a Required Distribution", "a missed required distribution",
                 "Treasuries, Corporate Debt", "missed_distribution"),
    "6.05": Item("Securities Act Updating Disclosure", "a Securities Act updating disclosure",
                 "Treasuries, Corporate Debt"),
    "7.01": Item("Regulation FD Disclosure", "a Regulation FD disclosure", "Company, Product News", generic=True),
    "8.01": Item("Other Events", "other events", "Company, Product News", generic=True),
    "9.01": Item("Financial Statements and Exhibits", "financial statements and exhibits", None, generic=True),
}
FORM_PHRASES = {"8-K": "an 8-K", "8-K/A": "an amended 8-K", "6-K": "a 6-K report", "6-K/A": "an amended 6-K report"}

_TITLE = re.compile(r"^\s*(?P<form>[^\s].*?) - (?P<company>.+?) \((?P<cik>\d{1,10})\)\s*\((?P<role>[^()]{1,40})\)\s*$",
                    re.S)
_ACCESSION = re.compile(r"\b(\d{10}-\d{2}-\d{6})\b")
_FILED = re.compile(r"Filed:\s*(\d{4}-\d{2}-\d{2})")
_ITEM = re.compile(r"\bItem\s+(\d{1,2}\.\d{2})\b\s*:?[ \t]*([^\n]*)")
_TAG = re.compile(r"<[^>]{0,200}>")
_BREAK = re.compile(r"<\s*br\s*/?\s*>|</?p\b[^>]{0,200}>", re.I)
_CONTACT = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def has_contact(user_agent: str) -> bool:
    """Whether a User-Agent names a contact e-mail, as SEC EDGAR's fair-access policy requires."""
    return bool(_CONTACT.search(user_agent or ""))


NO_CONTACT = ("SEC EDGAR requires a User-Agent with your name and a contact e-mail (its fair-access policy); "
              "set feeds.user_agent in finsent.toml (or FINSENT_FEEDS_USER_AGENT), e.g. "
              "\"Acme Research ops@acme.example\", or switch the EDGAR feeds off")


@dataclass(frozen=True)
class TitleParts:
    form: str
    company: str
    cik: str  # without leading zeros
    role: str  # Filer, Subject, Reporting, Filed by, ...


def parse_title(title: str) -> TitleParts | None:
    """``"8-K - Apple Inc. (0000320193) (Filer)"`` -> its parts; None when the title is not of that shape."""
    m = _TITLE.match(title or "")
    if m is None or int(m.group("cik")) == 0:
        return None
    company = " ".join(m.group("company").split())
    return TitleParts(m.group("form").strip().upper(), company, str(int(m.group("cik"))), m.group("role").strip())


def summary_text(summary: str) -> str:
    """The summary's HTML as lines of text (``<br>`` a line break, tags dropped, entities decoded)."""
    return html.unescape(_TAG.sub(" ", _BREAK.sub("\n", summary or "")))


@dataclass(frozen=True)
class SummaryParts:
    filed: str | None  # YYYY-MM-DD
    accession: str | None
    items: tuple[tuple[str, str], ...]  # (number, title as the summary gives it), in item order, once each


def parse_summary(summary: str) -> SummaryParts:
    """Filing date, accession number and 8-K items of an entry's summary (whatever of them it has)."""
    text = summary_text(summary)
    filed = _FILED.search(text)
    acc = re.search(r"AccNo:\s*(\d{10}-\d{2}-\d{6})", text)
    items: dict[str, str] = {}
    for m in _ITEM.finditer(text):
        number = _item_number(m.group(1))
        items.setdefault(number, " ".join(m.group(2).split()))
    ordered = tuple(sorted(items.items(), key=lambda kv: tuple(int(p) for p in kv[0].split("."))))
    return SummaryParts(filed.group(1) if filed else None, acc.group(1) if acc else None, ordered)


def _item_number(text: str) -> str:
    major, minor = text.split(".")
    return f"{int(major)}.{minor}"


def topic_of(items: Iterable[str]) -> str | None:
    """The topic of a filing's items: the first item (in item order) with a topic of its own; a generic
    one (7.01, 8.01) only when no other item has one; None when none has."""
    known = [ITEMS[i] for i in items if i in ITEMS and ITEMS[i].topic]
    specific = [it for it in known if not it.generic]
    return (specific or known or [Item("", "", None)])[0].topic


def flags_of(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ITEMS[i].flag for i in items if i in ITEMS and ITEMS[i].flag))  # type: ignore[misc]


def headline(form: str, companies: Sequence[str], items: Sequence[str]) -> str:
    """The sentence the model reads: "Apple files an 8-K on results of operations and financial condition"."""
    names = list(dict.fromkeys(c for c in companies if c)) or ["A company"]
    who = names[0] if len(names) == 1 else (
        ", ".join(names[:-1]) + " and " + names[-1] if len(names) <= 3 else f"{names[0]} and {len(names) - 1} others")
    verb = "files" if len(names) == 1 else "file"
    known = [i for i in items if i in ITEMS]
    if len(known) > 1:  # the exhibits item says nothing beside the others
        known = [i for i in known if i != "9.01"]
    phrases = [ITEMS[i].phrase for i in known]
    form_phrase = FORM_PHRASES.get(form, form)
    if not phrases:
        return f"{who} {verb} {form_phrase}"
    on = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return f"{who} {verb} {form_phrase} on {on}"


@dataclass
class Filing:
    """The entries of one accession number in one feed document."""

    accession: str
    form: str
    filers: list[TitleParts] = field(default_factory=list)
    items: tuple[tuple[str, str], ...] = ()
    filed: str | None = None
    link: str | None = None
    published: datetime | None = None
    raw: list[dict[str, Any]] = field(default_factory=list)


def raw_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """What an entry said, kept with the article (``filing.raw``)."""
    return {k: entry.get(k) for k in ("id", "title", "summary", "link", "updated") if entry.get(k) is not None}


def group_filings(entries: Iterable[Mapping[str, Any]], time_of: Callable[[Mapping[str, Any]], datetime]
                  ) -> tuple[list[Filing], int]:
    """The entries of a current-filings document as filings (one per accession number, in order of first
    appearance) and the count of entries that are not filings (no form/company/CIK title, no accession)."""
    filings: dict[str, Filing] = {}
    skipped = 0
    for entry in entries:
        title = parse_title(str(entry.get("title") or ""))
        summary = parse_summary(str(entry.get("summary") or ""))
        acc = summary.accession
        if acc is None:
            m = _ACCESSION.search(str(entry.get("id") or "")) or _ACCESSION.search(str(entry.get("link") or ""))
            acc = m.group(1) if m else None
        if title is None or acc is None:
            skipped += 1
            continue
        filing = filings.get(acc)
        if filing is None:
            filing = filings[acc] = Filing(acc, title.form, items=summary.items, filed=summary.filed,
                                           link=entry.get("link") or None, published=time_of(entry))
        if all(f.cik != title.cik for f in filing.filers):
            filing.filers.append(title)
        if not filing.items and summary.items:
            filing.items = summary.items
        filing.raw.append(raw_entry(entry))
    return list(filings.values()), skipped


def filing_message(filing: Filing, name_of: Callable[[str], str | None], source: str | None = None
                   ) -> dict[str, Any]:
    """The news.raw message of a filing.  ``name_of(cik)``: the company's name in the shipped reference
    (the ticker's link then spans it), None for a company the reference does not list."""
    filers = sorted(filing.filers, key=lambda f: f.role.lower() != "filer")  # the filer(s) first
    names = [name_of(f.cik) or company_name(f.company) for f in filers]
    numbers = [n for n, _ in filing.items]
    msg: dict[str, Any] = {
        "id": f"sec-{filing.accession}",
        "published_at": (filing.published or datetime.now().astimezone()).isoformat(),
        "title": headline(filing.form, names, numbers),
        "source": source or SOURCE,
        "ciks": [f.cik for f in filers],
        "filing": {
            "form": filing.form, "accession": filing.accession, "filed": filing.filed,
            "companies": [{"cik": f.cik, "name": f.company, "role": f.role} for f in filers],
            "items": [{"item": n, "title": ITEMS[n].title if n in ITEMS else t,
                       "topic": ITEMS[n].topic if n in ITEMS else None} for n, t in filing.items],
            "raw": filing.raw,
        },
    }
    if filing.link:
        msg["url"] = filing.link
    topic = topic_of(numbers)
    if topic:
        msg["given_topic"] = topic
    flags = flags_of(numbers)
    if flags:
        msg["flags"] = flags
    return msg
