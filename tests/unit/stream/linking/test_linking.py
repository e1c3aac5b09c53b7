"""Entity linking (stream/linking): every rule of the matcher, ambiguous words both ways, the table."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from stream.linking import Linker, default_linker, linker_for
from stream.linking.build import build_table, read_curated
from stream.linking.names import normalize_name, short_names
from stream.linking.watchlist import load_watchlist
from stream.messages.raw_message import link_tickers
from tests.conftest import REPO


def tickers(linker: Linker, text: str, at=None) -> list[str]:
    """The distinct tickers linked in ``text`` (read as of ``at``), in text order."""
    return list(dict.fromkeys(linker.extract(text, at)))


def rules(linker: Linker, text: str) -> list[tuple[str, str]]:
    return [(lk.ticker, lk.rule) for lk in linker.link(text)]


# ----------------------------------------------------------------- cashtags, tags, symbol lists
def test_cashtags_fold_share_classes(L):
    assert rules(L, "$AAPL up, $goog down, $BRK.B flat") == [("AAPL", "cashtag"), ("GOOGL", "cashtag"), ("BRK-B", "cashtag")]
    assert tickers(L, "costs $5 more, $3.5B deal") == []


@pytest.mark.parametrize("text", [
    "Acme Corp (NYSE: KO) rises", "Acme (NASDAQ:KO) rises", "Acme (Nasdaq: KO) rises",
    "Acme, NYSE American: KO, rises", "Acme (OTCQX: KO) rises",
])
def test_exchange_tags(L, text):
    assert rules(L, text) == [("KO", "exchange")]


def test_exchange_tag_keeps_an_unlisted_symbol_the_text_marks(L):
    assert tickers(L, "Activision 's (NASDAQ : ATVI) new game") == ["ATVI"]


def test_nasdaq_listed_symbol(L):
    assert rules(L, "Nasdaq-listed ZM jumps") == [("ZM", "exchange")]


def test_listed_symbol_in_parentheses_after_a_name(L):
    assert ("AHT", "paren") in rules(L, "Is Ashford Hospitality Trust, Inc. (AHT) Going to Burn These Hedge Funds?")
    assert tickers(L, "The chief executive (CEO) said the IPO (IPO) is off") == []


def test_symbol_lists(L):
    assert rules(L, "Price Targets On AAP, CVS, GPC") == [("AAP", "symbol_list"), ("CVS", "acronym"), ("GPC", "symbol_list")] \
        or tickers(L, "Price Targets On AAP, CVS, GPC") == ["AAP", "CVS", "GPC"]
    assert tickers(L, "Price Targets On AAP, CVS, GPC") == ["AAP", "CVS", "GPC"]
    assert tickers(L, "UK Construction Output (M/M) May: 1.5%, (Y/Y) 4.7%") == []
    assert tickers(L, "US, UK and EU agree") == []  # not symbols


@pytest.mark.parametrize("text", [
    "It is ON NOW for ALL of A team", "Is IT time to buy NOW?", "ALL eyes on the Fed",
    "A new low for bonds", "Turn it ON", "Now or never",
])
def test_symbol_words_never_match_in_running_text(L, text):
    assert tickers(L, text) == []


# ----------------------------------------------------------------- names
@pytest.mark.parametrize("text,want", [
    ("Boeing to cut 737 output", ["BA"]),
    ("JPMorgan's Dimon warns on the economy", ["JPM"]),
    ("Alphabet's Google sued over ad tech", ["GOOGL"]),
    ("Facebook owner faces EU fine", ["META"]),
    ("BofA raises Nike to buy", ["BAC", "NKE"]),
    ("Goldman and Morgan Stanley lead the rally", ["GS", "MS"]),
    ("P&G beats on price hikes", ["PG"]),
    ("AT&amp;T downgraded", ["T"]),
    ("Walt Disney Co. names a new CEO", ["DIS"]),
    ("Amazon.com posts record sales", ["AMZN"]),
    ("ExxonMobil, Chevron slide with oil", ["XOM", "CVX"]),
    ("Snap-on and Snap On are the same tools maker", ["SNA"]),
])
def test_names_and_brands(L, text, want):
    assert tickers(L, text) == want


def test_possessives_and_curly_apostrophes(L):
    assert tickers(L, "Apple's iPhone sales") == ["AAPL"]
    assert tickers(L, "Apple’s iPhone sales") == ["AAPL"]
    assert tickers(L, "Cargotec 's brands") == tickers(L, "Cargotec's brands")


def test_whole_words_only(L):
    assert tickers(L, "pineapple prices and Applebee's menus") == []
    assert tickers(L, "Intelligence report") == []


def test_case_aware_names(L):
    assert tickers(L, "boeing and netflix in lower case") == []  # lower case is not a name
    assert tickers(L, "NETFLIX SHARES JUMP AFTER EARNINGS BEAT") == ["NFLX"]  # ALL-CAPS headline
    assert tickers(L, "APPLE SHARES FALL AS DEMAND SLOWS") == []  # everyday word in ALL CAPS: unknown


def test_title_case_headlines(L):
    assert tickers(L, "Price Target Raised On Target Shares") == ["TGT"]
    assert tickers(L, "Analysts Raise Price Target For The Sector") == []


# ----------------------------------------------------------------- ambiguous everyday words, both ways
@pytest.mark.parametrize("text,want", [
    ("Target to close nine stores", ["TGT"]),
    ("Target's profit beats estimates", ["TGT"]),
    ("Analyst raises price target on the stock", []),
    ("The Fed's inflation target is 2%", []),
    ("Apple unveils a new iPad", ["AAPL"]),
    ("apple harvest hit by frost", []),
    ("Big Apple rents rise", []),
    ("Gap shares jump on Old Navy sales", ["GAP"]),
    ("The wage gap widens", []),
    ("Trade Gap Narrows In March", []),
    ("Ford recalls 10,000 trucks", ["F"]),
    ("Harrison Ford stars in a new film", []),
    ("Visa and Mastercard settle fee case", ["V", "MA"]),
    ("Student visa rules tighten", []),
    ("Shell profit jumps on gas trading", ["SHEL"]),
    ("Shell companies used to hide assets", []),
    ("Block shares rise after Cash App growth", ["XYZ"]),
    ("Carson Block says short sellers are under fire", []),
    ("Investors sold a block of shares", []),
    ("Snap shares sink after ad warning", ["SNAP"]),
    ("Japan calls a snap election", []),
    ("Delta raises its outlook", ["DAL"]),
    ("The Delta variant spreads", []),
    ("United Airlines adds flights", ["UAL"]),
    ("United States economy grows", []),
    ("Newcastle United loses", []),
    ("Manchester United loses", ["MANU"]),  # Manchester United plc is listed
    ("American Airlines cuts routes", ["AAL"]),
    ("American consumers spend more", []),
    ("Meta to cut 10,000 jobs", ["META"]),
    ("A meta-analysis of trials", []),
    ("Match Group shares slide", ["MTCH"]),
    ("Rate hikes are no Match for inflation", []),
    ("Carnival shares rise as cruises return", ["CCL"]),
    ("Rio carnival returns", []),
    ("Progressive beats on auto insurance", ["PGR"]),
    ("Progressive Democrats push a tax plan", []),
])
def test_ambiguous_words(L, text, want):
    assert tickers(L, text) == want


def test_generated_one_word_names_are_not_parts_of_longer_names(L):
    assert tickers(L, "Chair Powell presents the report") == []  # not Powell Industries
    assert tickers(L, "Viking Line ferries are safe") == []
    assert tickers(L, "Hasbro stock up 3.5% in Monday trading") == ["HAS"]


# ----------------------------------------------------------------- explanations, user aliases, watchlists
def test_links_explain_span_text_and_rule(L):
    text = "Why is this headline under TGT? Because Target said so"
    (lk,) = L.link(text)
    assert (lk.ticker, lk.rule, lk.text) == ("TGT", "name", "Target")
    assert text[lk.start:lk.end] == "Target"
    assert lk.as_dict() == {"ticker": "TGT", "start": lk.start, "end": lk.end, "text": "Target", "rule": "name"}


def test_user_aliases_extend_and_override(tmp_path):
    p = tmp_path / "aliases.csv"
    p.write_text("ticker,alias\nACME,Roadrunner Traps\n-,Boeing\nGOOG,Chocolate Factory\n")
    linker = Linker.from_csv(p)
    assert rules(linker, "roadrunner traps and Boeing and the Chocolate Factory") == [
        ("ACME", "alias"), ("GOOGL", "alias")]  # user names: any case; '-' removes; share class folds


def test_watchlist_keeps_mentions_but_drops_their_ticker(tmp_path):
    w = tmp_path / "desk.csv"
    w.write_text("ticker\nAAPL\n# a comment\nbrk.b\n")
    assert load_watchlist(str(w)) == frozenset({"AAPL", "BRK.B"})
    linker = Linker(watchlist=load_watchlist(str(w)))
    got, links = link_tickers(linker, ["TSLA"], "Apple and Microsoft; $BRK.B")
    assert got == ("AAPL", "BRK-B")
    assert {lk["ticker"]: lk.get("watch", True) for lk in links} == {"TSLA": False, "AAPL": True, "MSFT": False,
                                                                       "BRK-B": True}
    assert load_watchlist("all") is None and load_watchlist(None) is None
    top = load_watchlist("top50")
    assert len(top) == 50 and "AAPL" in top and "TNK" not in top
    assert linker_for(None, "all") is default_linker()


# ----------------------------------------------------------------- robustness
@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_linker_never_raises_and_spans_are_valid(text):
    linker = default_linker()
    for lk in linker.link(text):
        assert 0 <= lk.start <= lk.end
        assert lk.ticker and lk.rule


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["Apple", "apple", "'s", " ", ",", "$", "AAPL", "(NYSE:", ")", "Target", "price",
                                 "ALL", "IT", "United", "States", "&amp;", "’", "-", ".", "Gap", "\n"]), max_size=30))
def test_linker_on_near_miss_tokens(parts):
    text = "".join(parts)
    for lk in default_linker().link(text):
        assert lk.ticker


# ----------------------------------------------------------------- the table
@pytest.mark.parametrize("legal,name", [
    ("AMAZON COM INC", "Amazon"), ("Walt Disney Co", "Walt Disney"), ("BANK OF AMERICA CORP /DE/", "Bank of America"),
    ("COSTCO WHOLESALE CORP /NEW", "Costco Wholesale"), ("Tesla, Inc.", "Tesla"), ("AT&T INC.", "AT&T"),
    ("Contemporary Amperex Technology Co., Limited/ADR", "Contemporary Amperex Technology"),
])
def test_normalize_legal_names(legal, name):
    assert normalize_name(legal) == name


def test_short_names_drop_generic_words():
    assert short_names("Cisco Systems") == ["Cisco"]
    assert short_names("NewLake Capital Partners") == ["NewLake Capital", "NewLake"]
    assert short_names("Boeing") == []


def test_shipped_table_is_committed_and_packaged():
    here = REPO / "stream" / "linking"
    assert (here / "aliases.tsv").stat().st_size > 100_000 and (here / "symbols.tsv").stat().st_size > 100_000
    assert '"*.tsv"' in (REPO / "pyproject.toml").read_text()  # package-data: an installed package finds them
    assert all(k in "NCASXFDGH" for _, _, k, _ in read_curated())


def test_build_from_a_small_reference(tmp_path):
    sec = tmp_path / "sec.csv"
    sec.write_text("ticker,name,exchange,cik\nZZZQ,ZORBLAX TECHNOLOGIES INC,Nasdaq,1\nZZZR,ZORBLAX TECHNOLOGIES INC,Nasdaq,1\n"
                   "GOOGL,Alphabet Inc.,Nasdaq,2\nGOOG,Alphabet Inc.,Nasdaq,2\n")
    table = build_table(sec, corpus=())
    names = {(r.name, r.ticker, r.kind) for r in table.aliases}
    assert ("Zorblax Technologies", "ZZZQ", "N") in names and ("Zorblax", "ZZZQ", "G") in names
    assert ("Google", "GOOGL", "N") in names  # curated
    symbols = {s: c for s, c, *_ in table.symbols}
    assert symbols["ZZZR"] == "ZZZQ" and symbols["GOOG"] == "GOOGL"  # share classes fold by CIK
    # each CIK once: its canonical ticker and its name as people write it (EDGAR filings name the CIK)
    assert table.ciks == [(1, "ZZZQ", "Zorblax Technologies"), (2, "GOOGL", "Alphabet")]


def test_a_parsed_item_forwards_its_given_tickers_and_apart_the_links_found_with_their_version():
    from datetime import datetime

    from stream.linking import default_linker
    from stream.messages.raw_message import parse_message

    now = datetime(2024, 3, 5, tzinfo=UTC)
    item = parse_message({"published_at": "2024-03-04T14:00:00Z", "title": "Boeing and $KO", "tickers": ["acme"]},
                         now=now)
    assert item.tickers == ("ACME", "BA", "KO")
    assert [lk["rule"] for lk in item.ticker_links] == ["given", "name", "cashtag"]
    msg = item.to_message()
    assert msg["tickers"] == ["ACME"]  # the given ones only: a consumer tells them from the links found
    assert [lk["rule"] for lk in msg["links"]] == ["name", "cashtag"]
    assert msg["links_version"] == default_linker().version
    plain = parse_message({"published_at": "2024-03-04T14:00:00Z", "title": "Boeing"}, now=now).to_message()
    assert "tickers" not in plain and plain["links"][0]["ticker"] == "BA"


def test_generated_stream_in_names_mode_is_linked_back_to_its_tickers():
    from datetime import timedelta

    from stream.synthetic.generate import company_aliases, day_start, generate_stream

    start = day_start(hour=9.0)
    plain = list(generate_stream(start, timedelta(minutes=90), seed=5))
    named = list(generate_stream(start, timedelta(minutes=90), seed=5, names=True))
    assert [m["title"] for m in plain] == [m["title"] for m in named]  # same stream, minus the tickers field
    assert all("tickers" not in m for m in named)
    linker = Linker(company_aliases())
    by_name = 0
    for p, n in zip(plain, named):
        got = tickers(linker, n["title"])
        assert sorted(got) == sorted(p["tickers"]), n["title"]
        by_name += any(lk.rule == "alias" for lk in linker.link(n["title"]))
    assert by_name > len(named) / 3  # most company headlines name the company, a few use a cashtag


def test_alert_message_says_which_text_put_a_headline_under_the_ticker():
    from datetime import datetime

    from alerts.detector import Decision, DetectorConfig, Finding
    from alerts.service import Headline, render

    ws = int(datetime(2025, 3, 13, 17, 5, tzinfo=UTC).timestamp())
    links = [{"ticker": "TGT", "start": 0, "end": 6, "text": "Target", "rule": "name"},
             {"ticker": "WMT", "start": 11, "end": 18, "text": "Walmart", "rule": "name"}]
    heads = [Headline("a1", "Target and Walmart cut outlooks", None, 0.9, datetime.now(UTC),
                      ticker_links=links)]
    f = Finding("ticker", "TGT", ws, ws + 300, Decision(True, "fired", articles=10, negative=9, share=0.9, baseline=0.3, std=0.55, z=6.4,
                                                       history=40))
    _, body = render(f, heads, DetectorConfig(), replayed=False)
    assert "under TGT because of 'Target' (name)" in body and "Walmart' (name)" not in body


@pytest.mark.parametrize("text", [
    "Fed's Powell says rates to stay high", "Chair Powell testifies", "Investor Icahn builds a stake",
    "Treasury Secretary Yellen warns", "Billionaire Ackman bets against bonds",
])
def test_people_are_not_companies(L, text):
    assert tickers(L, text) == []


def test_committed_table_is_what_the_build_produces():
    """A stale table (curated.tsv or the builder edited without 'finsent tickers build') fails here."""
    from stream.linking.build import ALIASES, CIKS, DEFAULT_SEC, SYMBOLS, write_table

    if not DEFAULT_SEC.is_file():
        pytest.skip(f"SEC reference not found at {DEFAULT_SEC}")
    pytest.importorskip("wordfreq")
    table = build_table()
    import tempfile

    from stream.linking.build import INDEX_FILE

    pytest.importorskip("pytickersymbols")
    with tempfile.TemporaryDirectory() as d:
        a, s, i = Path(d) / "aliases.tsv", Path(d) / "symbols.tsv", Path(d) / "indexes.tsv"
        c = Path(d) / "ciks.tsv"
        write_table(table, a, s, i, c)
        assert a.read_text() == ALIASES.read_text()
        assert s.read_text() == SYMBOLS.read_text()
        assert i.read_text() == INDEX_FILE.read_text()
        assert c.read_text() == CIKS.read_text()


def test_index_watchlists():
    sp500, dow = load_watchlist("sp500"), load_watchlist("DOW30")
    assert 480 <= len(sp500) <= 510 and {"AAPL", "MSFT", "JPM", "BRK-B", "GOOGL"} <= sp500
    assert len(dow) == 30 and dow <= sp500 | {"BRK-B"}
    assert "TNK" not in sp500
    with pytest.raises(Exception, match="neither"):
        load_watchlist("ftse250")
