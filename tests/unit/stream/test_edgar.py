"""SEC EDGAR filings as news (stream/sources/edgar.py): entry titles and summaries (examples and
hypothesis), the 8-K item table, headlines, co-registrants, and the message the worker links by CIK.

The EDGAR documents are written by hand (tests/support/feed_documents.py says why)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import feedparser
import pytest
from hypothesis import given, strategies as st

from stream.base.labels import TOPICS
from stream.linking import default_linker
from stream.messages.raw_message import InvalidRecord, parse_message
from stream.sources import edgar
from stream.sources.rss import entry_time
from tests.conftest import REPO
from tests.support.feed_documents import EDGAR_6K, EDGAR_8K, EDGAR_8K_EXPECTED

NOW = datetime(2024, 8, 2, tzinfo=UTC)
L = default_linker()


def name_of(cik: str):
    found = L.company(cik)
    return found[1] if found else None


@pytest.mark.parametrize("title, parts", [
    ("8-K - Apple Inc. (0000320193) (Filer)", ("8-K", "Apple Inc.", "320193", "Filer")),
    ("8-K/A - DUKE ENERGY CAROLINAS, LLC (0000030371) (Filer)",
     ("8-K/A", "DUKE ENERGY CAROLINAS, LLC", "30371", "Filer")),
    ("SC 13D/A - ACME (HOLDINGS) - WEST CORP (0001234567) (Subject)",
     ("SC 13D/A", "ACME (HOLDINGS) - WEST CORP", "1234567", "Subject")),
    ("6-K - TOYOTA MOTOR CORP/ (0001094517) (Filer)", ("6-K", "TOYOTA MOTOR CORP/", "1094517", "Filer")),
])
def test_parse_title(title, parts):
    got = edgar.parse_title(title)
    assert (got.form, got.company, got.cik, got.role) == parts


@pytest.mark.parametrize("title", ["", "Latest Filings", "8-K - Apple Inc. (Filer)", "8-K - Apple (0000000000) (Filer)",
                                   "8-K - Apple (12345678901) (Filer)", "Apple Inc. (0000320193)"])
def test_titles_that_are_no_filing(title):
    assert edgar.parse_title(title) is None


FORMS = st.sampled_from(["8-K", "8-K/A", "6-K", "6-K/A", "SC 13D", "10-Q"])
COMPANY = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60).filter(
    lambda s: s.strip() and " - " not in s and not s.startswith(" ") and not re.search(r"\s$", s))


@given(FORMS, COMPANY, st.integers(min_value=1, max_value=9_999_999_999), st.sampled_from(["Filer", "Subject",
                                                                                           "Reporting"]))
def test_parse_title_round_trip(form, company, cik, role):
    got = edgar.parse_title(f"{form} - {company} ({cik:010d}) ({role})")
    assert got is not None
    assert (got.form, got.cik, got.role) == (form, str(cik), role)
    assert got.company == " ".join(company.split())


@given(st.text(max_size=200))
def test_parse_title_of_any_text_never_raises(text):
    got = edgar.parse_title(text)
    assert got is None or (got.cik.isdigit() and int(got.cik) > 0 and got.form and got.company)


SUMMARY = (" &lt;b&gt;Filed:&lt;/b&gt; 2024-08-01 &lt;b&gt;AccNo:&lt;/b&gt; 0000320193-24-000081 &lt;b&gt;Size:&lt;/b&gt;"
           " 2 MB&lt;br&gt;Item 2.02: Results of Operations and Financial Condition&lt;br&gt;Item 9.01: Financial"
           " Statements and Exhibits")


def test_parse_summary_as_feedparser_hands_it_over():
    got = edgar.parse_summary(html.unescape(SUMMARY))
    assert got.filed == "2024-08-01" and got.accession == "0000320193-24-000081"
    assert got.items == (("2.02", "Results of Operations and Financial Condition"),
                         ("9.01", "Financial Statements and Exhibits"))
    assert edgar.parse_summary("").items == () and edgar.parse_summary("<b>Filed:</b> soon").filed is None


@given(st.lists(st.sampled_from(sorted(edgar.ITEMS)), unique=True, max_size=8),
       st.sampled_from(["<br>", "<br />", "<br/>", "\n"]))
def test_parse_summary_finds_every_item_in_item_order(items, br):
    text = "<b>Filed:</b> 2024-08-01 <b>AccNo:</b> 0001999999-24-000004 <b>Size:</b> 95 KB"
    text += "".join(f"{br}Item {i}: {edgar.ITEMS[i].title}" for i in items)
    got = edgar.parse_summary(text)
    want = sorted(items, key=lambda i: tuple(int(p) for p in i.split(".")))
    assert [n for n, _ in got.items] == want
    assert [t for _, t in got.items] == [edgar.ITEMS[i].title for i in want]


@given(st.text(max_size=400))
def test_parse_summary_of_any_text_never_raises(text):
    got = edgar.parse_summary(text)
    assert all(re.fullmatch(r"\d{1,2}\.\d{2}", n) for n, _ in got.items)
    assert got.accession is None or re.fullmatch(r"\d{10}-\d{2}-\d{6}", got.accession)


def test_item_table_topics():
    assert all(it.topic is None or it.topic in TOPICS for it in edgar.ITEMS.values())
    assert edgar.topic_of(["2.02", "9.01"]) == "Earnings"
    assert edgar.topic_of(["5.02"]) == "Personnel Change"
    assert edgar.topic_of(["2.01", "9.01"]) == "M&A, Investments"
    assert edgar.topic_of(["7.01", "9.01"]) == "Company, Product News"  # generic, but the only one
    assert edgar.topic_of(["8.01", "2.02"]) == "Earnings"  # a specific item beats a generic one
    assert edgar.topic_of(["9.01"]) is None and edgar.topic_of([]) is None and edgar.topic_of(["12.34"]) is None
    assert edgar.flags_of(["1.03", "9.01"]) == ["bankruptcy"] and edgar.flags_of(["2.02"]) == []


def test_readme_documents_the_item_table():
    text = (REPO / "README.md").read_text()
    section = text[text.index("8-K item"):]
    for number, item in edgar.ITEMS.items():
        row = next((line for line in section.splitlines() if line.startswith(f"| {number} ")), None)
        assert row is not None, f"README: no row for item {number}"
        assert (item.topic or "-") in row and (item.flag is None or item.flag in row), row


@pytest.mark.parametrize("form, companies, items, want", [
    ("8-K", ["Apple"], ["2.02", "9.01"], "Apple files an 8-K on results of operations and financial condition"),
    ("8-K", ["Acme"], ["9.01"], "Acme files an 8-K on financial statements and exhibits"),
    ("8-K/A", ["Acme", "Acme Sub"], ["1.03"], "Acme and Acme Sub file an amended 8-K on bankruptcy or receivership"),
    ("6-K", ["Toyota Motor"], [], "Toyota Motor files a 6-K report"),
    ("10-Q", ["A", "B", "C", "D"], [], "A and 3 others file 10-Q"),
])
def test_headline_is_a_sentence(form, companies, items, want):
    assert edgar.headline(form, companies, items) == want


def test_contact_in_the_user_agent():
    assert edgar.has_contact("Acme Research ops@acme.example")
    assert edgar.has_contact("finsent/0.1 (mailto:desk@bank.co.uk)")
    assert not edgar.has_contact("finsent/0.1 news poller") and not edgar.has_contact("me@localhost")


def _filings(doc: str):
    return edgar.group_filings(feedparser.parse(doc.encode("latin-1")).entries, entry_time)


def test_co_registrants_are_one_filing_and_entries_without_cik_are_counted():
    filings, skipped = _filings(EDGAR_8K)
    assert skipped == 0
    duke = next(f for f in filings if f.accession == "0001326160-24-000127")
    assert [f.cik for f in duke.filers] == ["1326160", "30371"] and len(duke.raw) == 2
    assert len(filings) == 4
    broken = EDGAR_8K.replace("8-K - CATERPILLAR INC (0000018230) (Filer)", "CATERPILLAR INC")
    assert _filings(broken)[1] == 1


def test_filing_messages_link_by_cik_with_the_item_topic():
    filings, _ = _filings(EDGAR_8K)
    items = {}
    for f in filings:
        item = parse_message(edgar.filing_message(f, name_of), extractor=L, now=NOW)
        items[item.id] = item
    assert set(items) == set(EDGAR_8K_EXPECTED)
    for item_id, (tickers, topic, flags) in EDGAR_8K_EXPECTED.items():
        it = items[item_id]
        assert list(it.tickers) == tickers, it.title
        assert it.extra.get("given_topic") == topic and it.extra.get("flags") == flags
    apple = items["sec-0000320193-24-000081"]
    link = apple.ticker_links[0]
    assert link["rule"] == "cik" and link["ticker"] == "AAPL"
    assert apple.model_text[link["start"]:link["end"]] == link["text"] == "Apple"  # spans the company's name
    assert apple.published_at == datetime(2024, 8, 1, 20, 30, 37, tzinfo=UTC)  # acceptance time, UTC
    assert apple.url.endswith("0000320193-24-000081-index.htm")
    raw = apple.extra["filing"]
    assert raw["form"] == "8-K" and raw["accession"] == "0000320193-24-000081" and raw["filed"] == "2024-08-01"
    assert raw["raw"][0]["title"] == "8-K - Apple Inc. (0000320193) (Filer)"  # the entry as EDGAR gave it
    assert "Item 2.02" in raw["raw"][0]["summary"]
    zorblax = items["sec-0001999999-24-000004"]  # a CIK the reference does not list: no ticker, still news
    assert zorblax.ticker_links == () and zorblax.extra["ciks"] == ["1999999"]
    assert zorblax.title.startswith("Zorblax Widgets files an 8-K on bankruptcy or receivership")


def test_a_6k_has_no_items_and_the_model_picks_its_topic():
    filings, _ = _filings(EDGAR_6K)
    msg = edgar.filing_message(filings[0], name_of)
    assert msg["title"] == "Toyota Motor files a 6-K report" and "given_topic" not in msg
    assert parse_message(msg, extractor=L, now=NOW).tickers == ("TM",)


ENTRY = st.fixed_dictionaries({
    "title": st.one_of(st.text(max_size=80), st.builds(
        lambda form, company, cik: f"{form} - {company} ({cik:010d}) (Filer)", FORMS, COMPANY,
        st.integers(min_value=1, max_value=9_999_999_999))),
    "summary": st.one_of(st.text(max_size=200), st.builds(
        lambda acc, items: f"<b>AccNo:</b> {acc}" + "".join(f"<br>Item {i}: x" for i in items),
        st.from_regex(r"\A\d{10}-\d{2}-\d{6}\Z"), st.lists(st.sampled_from(sorted(edgar.ITEMS)), max_size=4))),
    "id": st.text(max_size=40),
})


@given(st.lists(ENTRY, max_size=6))
def test_any_entries_give_valid_articles_or_are_skipped(entries):
    filings, skipped = edgar.group_filings(entries, lambda e: NOW)
    assert len(filings) + skipped <= len(entries)
    for f in filings:
        msg = edgar.filing_message(f, name_of)
        try:
            item = parse_message(msg, extractor=L, now=NOW)
        except InvalidRecord as exc:  # only a title with nothing visible may be refused
            assert exc.reason == "empty_title", exc
            continue
        assert item.id == f"sec-{f.accession}"
        known = [L.company(c) for c in msg["ciks"]]
        cik_links = [lk for lk in item.ticker_links if lk["rule"] == "cik"]
        assert [lk["ticker"] for lk in cik_links] == [k[0] for k in known if k]  # every listed filer, exactly
        text = f"{item.title} {item.summary or ''}"
        assert all(text[lk["start"]:lk["end"]] == lk["text"] for lk in cik_links)
