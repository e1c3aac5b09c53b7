"""Entity linking, issue 23: point-in-time names and symbols, symbol lists with unknown symbols,
foreign issuers and unlisted entities, context rules, the user's companies file."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from stream.linking import Linker, UserCompany, default_linker, read_user_companies
from stream.linking.build import DEFAULT_SEC, build_table, read_entities, read_history
from stream.linking.matcher import shipped_table
from tests.unit.stream.linking.test_linking import tickers


# ----------------------------------------------------------------- point-in-time names
@pytest.mark.parametrize("text,at,want", [
    ("Alcoa posts quarterly loss", "2010-10-08", ["HWM"]),  # Alcoa Inc. is Howmet today
    ("Alcoa posts quarterly loss", "2018-10-08", ["AA"]),  # Alcoa Corp took the name on 2016-11-01
    ("Alcoa posts quarterly loss", None, ["AA"]),  # no date: today's holder
    ("Kraft cuts 1,600 jobs", "2011-05-05", ["MDLZ"]),
    ("Kraft cuts 1,600 jobs", "2015-05-05", ["KHC"]),
    ("Ingersoll-Rand profit rises", "2015-03-02", ["TT"]),
    ("Ingersoll Rand profit rises", "2015-03-02", ["TT"]),  # either spelling, one history
    ("Ingersoll Rand profit rises", "2021-03-02", ["IR"]),
    ("SAIC wins Army contract", "2012-01-05", ["LDOS"]),
    ("SAIC wins Army contract", "2016-01-05", ["SAIC"]),
    ("McGraw-Hill Reports Q1 EPS", "2013-05-02", ["SPGI"]),  # the day of the change: still the old holder
    ("McGraw-Hill Reports Q1 EPS", "2013-05-03", ["MH"]),
    ("Whole Foods shares rise", "2019-01-01", ["AMZN"]),  # Amazon's since 2017-08-28
    ("Whole Foods shares rise", "2012-01-01", []),  # Whole Foods Market, listed then, not Amazon
])
def test_a_name_belongs_to_whoever_held_it_on_the_day(L, text, at, want):
    assert tickers(L, text, at) == want


@pytest.mark.parametrize("text,want", [
    ("AmerisourceBergen Raises Profit Forecasts", ["COR"]),
    ("United Technologies expects higher cost", ["RTX"]),
    ("Chesapeake Energy to file for bankruptcy", ["EXE"]),
    ("Is EnCana Corporation (ECA) the Perfect Stock?", ["OVV"]),
    ("Fiat Chrysler and Peugeot merger", ["STLA"]),
    ("TD Securities Upgrades Barrick Gold", ["TD", "B"]),
    ("Advanced Auto Parts sees sales growth", ["AAP"]),
])
def test_former_names_of_the_issue_link_to_todays_ticker(L, text, want):
    for at in ("2019-06-01", datetime(2019, 6, 1, 14, tzinfo=UTC), date(2019, 6, 1)):
        assert tickers(L, text, at) == want


def test_a_former_name_stays_after_the_rename_unless_someone_took_it(L):
    assert tickers(L, "Facebook shares fall", "2015-01-01") == ["META"]
    assert tickers(L, "Facebook shares fall", "2023-01-01") == ["META"]  # nobody took "Facebook"
    assert tickers(L, "PerkinElmer shares fall", "2020-01-01") == ["RVTY"]
    assert tickers(L, "PerkinElmer shares fall", "2024-01-01") == []  # the private PerkinElmer since 2023
    (lk,) = L.link("PerkinElmer shares fall", "2024-01-01", unlisted=True)
    assert (lk.ticker, lk.entity) == (None, "PerkinElmer (private)")


@pytest.mark.parametrize("text,at,want", [
    ("Barrick (GOLD) to sell mine", "2020-02-02", ["B"]),
    ("Shares of $GOLD rise", "2020-02-02", ["B"]),
    ("Shares of $GOLD rise", "2026-02-02", ["GOLD"]),  # the symbol went to Gold.com
    ("Shares of $GOLD rise", None, ["GOLD"]),
    ("Barrick Gold (ABX) to sell mine", "2015-02-02", ["B"]),
    ("Shares of $ABX rise", None, ["ABX"]),  # Abacus today
    ("Alcoa (AA) posts loss", "2010-05-05", ["HWM"]),
    ("Alcoa (AA) posts loss", "2018-05-05", ["AA"]),
    ("Shares of $CHK fall", "2015-01-01", ["EXE"]),  # nobody took CHK: any day
    ("Shares of $CHK fall", None, ["EXE"]),
])
def test_former_symbols_map_within_their_period(L, text, at, want):
    assert tickers(L, text, at) == want
    assert L.canonical("gold", "2020-02-02") == "B" and L.canonical("GOLD") == "GOLD"


def test_a_published_message_is_linked_as_of_its_date():
    from stream.messages.raw_message import parse_message

    now = datetime(2026, 1, 1, tzinfo=UTC)
    old = parse_message({"published_at": "2010-10-08T12:00:00Z", "title": "Alcoa posts quarterly loss"}, now=now)
    new = parse_message({"published_at": "2018-10-08T12:00:00Z", "title": "Alcoa posts quarterly loss"}, now=now)
    assert old.tickers == ("HWM",) and new.tickers == ("AA",)


# ----------------------------------------------------------------- symbol lists
@pytest.mark.parametrize("text,want", [
    ("Top Percentage Gainers and Losers (VSEA, ZSTN, GMCR, SGI, AMAT, WOLF, ACLS, MGM)",
     {"AMAT", "ACLS", "MGM"}),
    ("Goldman Adjusts Price Targets On AAP, CVS, GPC, ORLY, SPLS, & TSCO", {"AAP", "CVS", "GPC", "ORLY", "TSCO"}),
    ("Benzinga's Volume Movers (KVHI, REGN, ZZZQX, AAWW)", {"REGN"}),
    ("Analysts Lift Targets On ZZZQX, QQQZZ, MSFT", {"MSFT"}),  # marked by "On": one known symbol is enough
])
def test_unknown_symbols_never_block_known_ones(L, text, want):
    got = {lk.ticker for lk in L.link(text, "2012-03-12") if lk.rule == "symbol_list"}
    assert want <= got  # (symbols reused since, like SGI or WOLF, may link too: the list does not say when)


@pytest.mark.parametrize("text", [
    "US, UK and EU agree on sanctions", "CEO, CFO and COO leave", "Q1, Q2 and Q3 sales rose",
    "ZZZQX, QQQZZ and MSFT rally",  # an unmarked list: at least half its symbols must be known
    "IT, AI and EV names lead",
])
def test_lists_of_words_or_mostly_unknown_symbols_do_not_link_as_lists(L, text):
    assert [lk for lk in L.link(text) if lk.rule == "symbol_list"] == []


def test_a_list_in_an_all_caps_headline_links_only_in_parentheses(L):
    assert {lk.ticker for lk in L.link("TOP GAINERS (AMAT, ZZZQX, MGM)")} == {"AMAT", "MGM"}
    assert L.link("SHARES OF ALL, IT AND ON FALL") == []


# ----------------------------------------------------------------- foreign issuers and unlisted entities
@pytest.mark.parametrize("text,want", [
    ("BMW cuts profit outlook as trade war bites", ["BMWKY"]),
    ("Lufthansa to ground 700 planes", ["DLAKY"]),
    ("ABB first-quarter profit misses estimates", ["ABBNY"]),
    ("AmBev profit rises on Brazil beer prices", ["ABEV"]),
    ("CIBC to buy PrivateBancorp", ["CM"]),
    ("Mitsubishi UFJ to cut costs", ["MUFG"]),
    ("MUFG to cut costs", ["MUFG"]),
])
def test_foreign_issuers_link_to_their_us_line(L, text, want):
    assert tickers(L, text) == [L.canonical(t) for t in want]  # ABBNY folds to ABB's first SEC line


def test_foreign_issuers_without_a_us_line_are_unlisted_entities(L):
    text = "UniCredit and Samsung shares rise; Siemens falls"
    assert L.extract(text) == [] and L.link(text) == []
    links = L.link(text, unlisted=True)
    assert [(lk.ticker, lk.entity, lk.text, lk.rule) for lk in links] == [
        (None, "UniCredit", "UniCredit", "name"), (None, "Samsung Electronics", "Samsung", "name"),
        (None, "Siemens", "Siemens", "name")]
    assert all(text[lk.start:lk.end] == lk.text for lk in links)
    assert links[0].as_dict() == {"ticker": None, "start": 0, "end": 9, "text": "UniCredit", "rule": "name",
                                  "entity": "UniCredit"}
    assert "entity" not in L.link("Boeing rises")[0].as_dict()  # listed links keep their stored form


def test_siemens_is_not_siemens_energy(L):
    assert tickers(L, "Siemens to cut 6,000 jobs") == []  # Siemens AG has no US line in the SEC list
    assert tickers(L, "Siemens Energy to cut 6,000 jobs") == ["SMERY"]


# ----------------------------------------------------------------- context rules, both directions
@pytest.mark.parametrize("text,want", [
    ("British luxury carmaker Bentley to cut 1,000 jobs", []),
    ("Bentley Motors recalls Bentayga SUVs", []),
    ("Bentley Systems shares rise after results", ["BSY"]),
    ("Bentley raises its annual outlook", ["BSY"]),
    ("German Merck's consumer health unit draws bids", []),
    ("Merck KGaA to buy Sigma-Aldrich", []),
    ("Merck raises forecast on Keytruda sales", ["MRK"]),
    ("DoubleLine's Gundlach says Treasuries are cheap", []),
    ("DoubleLine Income Solutions Fund cuts its payout", ["DSL"]),
    ("Atlas Air shares rise on a new cargo deal", []),
    ("Air Products shares rise", ["APD"]),
])
def test_context_rules(L, text, want):
    assert tickers(L, text) == want


def test_unlisted_entities_consume_their_span(L):
    links = L.link("Merck KGaA to buy Sigma-Aldrich", unlisted=True)
    assert [(lk.ticker, lk.entity, lk.text) for lk in links] == [(None, "Merck KGaA", "Merck KGaA")]


# ----------------------------------------------------------------- the user's companies
def test_read_user_companies(tmp_path):
    p = tmp_path / "desk.csv"
    p.write_text("ticker,name,from,until\nACME,Acme Widgets|Acme,,\nOLDCO,Roadrunner Corp,2009-01-01,2014-06-30\n"
                 "# a comment\n-,Boeing\n")
    assert read_user_companies(p) == [
        UserCompany("ACME", "Acme Widgets", "", ""), UserCompany("ACME", "Acme", "", ""),
        UserCompany("OLDCO", "Roadrunner Corp", "2009-01-01", "2014-06-30"), UserCompany("-", "Boeing", "", "")]
    p.write_text("ACME,Acme,2009-13,\n")
    with pytest.raises(ValueError, match="not a date"):
        read_user_companies(p)


def test_user_companies_with_a_period_join_the_shipped_holders(tmp_path):
    p = tmp_path / "desk.csv"
    p.write_text("ticker,name,from\nZZDESK,Alcoa,2030-01-01\nBMW.DE,BMW Group\n")
    linker = Linker.from_csv(p)
    assert tickers(linker, "Alcoa to cut jobs", "2010-01-01") == ["HWM"]  # the shipped history still applies
    assert tickers(linker, "Alcoa to cut jobs", "2031-01-01") == ["ZZDESK"]
    assert tickers(linker, "bmw group sales") == ["BMW.DE"]  # a non-US listing of the desk's own


@pytest.mark.skipif(not DEFAULT_SEC.is_file(), reason="SEC reference absent")
def test_tickers_build_with_a_companies_file(tmp_path, capsys):
    pytest.importorskip("wordfreq")
    from stream.linking.cli import cmd_build

    desk = tmp_path / "desk.csv"
    desk.write_text("ticker,name,from,until\nZZPRIV,Zorblax Private Holdings,,\nZZOLD,Quuxco,2010-01-01,2015-01-01\n")
    out = tmp_path / "tables"
    assert cmd_build(argparse.Namespace(sec=None, no_corpus=True, companies=[desk], out=out)) == 0
    assert "; 2 names from your companies" in capsys.readouterr().out
    aliases, symbols, dated = _read_tables(out)
    linker = Linker(aliases=aliases, symbols=symbols, dated_symbols=dated)
    assert tickers(linker, "Zorblax Private Holdings raises prices") == ["ZZPRIV"]
    assert tickers(linker, "$ZZPRIV up") == ["ZZPRIV"]
    assert tickers(linker, "quuxco shares rise", "2012-01-01") == ["ZZOLD"]
    assert tickers(linker, "Boeing rises") == ["BA"]  # the shipped reference is still there


def _read_tables(d: Path):
    from stream.linking.matcher import AliasRow, _read_tsv

    aliases = [AliasRow(*r[:7]) for r in _read_tsv(d / "aliases.tsv")]
    symbols = {r[0]: r[1] for r in _read_tsv(d / "symbols.tsv") if len(r) < 6}
    dated = [(r[0], r[1], r[4], r[5]) for r in _read_tsv(d / "symbols.tsv") if len(r) >= 6]
    return aliases, symbols, dated


def test_build_gives_todays_holder_the_name_from_the_end_of_the_former_use(tmp_path):
    sec = tmp_path / "sec.csv"
    sec.write_text("ticker,name,exchange,cik\nZZNEW,Quuxco Industries Inc,NYSE,1\nZZOLD,Fooco Inc,NYSE,2\n")
    history = tmp_path / "history.tsv"
    history.write_text("ZZOLD\tQuuxco Industries\tN\t-\t2016-11-01\ttest source\nZZOLD\tQXC\tF\t-\t2016-11-01\ttest\n")
    entities = tmp_path / "entities.tsv"
    entities.write_text("Gadget AG\tGadget AG|Gadgetwerk\tGermany\tZZNEW\t-\t-\ttest\n"
                        "Widget SA\tWidget SA\tFrance\tWDGTY\t-\t-\ttest\n")
    table = build_table(sec, corpus=(), history_path=history, entities_path=entities)
    rows = {(r.name, r.ticker): r for r in table.aliases}
    assert rows[("Quuxco Industries", "ZZOLD")].until == "2016-11-01"
    assert rows[("Quuxco Industries", "ZZNEW")].since == "2016-11-01"  # set by the build
    assert rows[("Gadgetwerk", "ZZNEW")].kind == "G" and rows[("Widget SA", "")].entity == "Widget SA"
    symbols = {(s[0], s[1]): s for s in table.symbols}
    assert symbols[("QXC", "ZZOLD")][4:] == ("", "2016-11-01")
    linker = Linker(aliases=table.aliases, symbols={s: c for s, c, _, _, a, b in table.symbols if not (a or b)},
                    dated_symbols=[(s, c, a, b) for s, c, _, _, a, b in table.symbols if a or b])
    assert tickers(linker, "Quuxco Industries rises", "2010-01-01") == ["ZZOLD"]
    assert tickers(linker, "Quuxco Industries rises", "2020-01-01") == ["ZZNEW"]


def test_history_and_entities_are_well_formed():
    _, symbols, _ = shipped_table()
    rows = read_history()
    assert len(rows) >= 150 and all(r.source for r in rows)
    missing = {r.ticker for r in rows} - set(symbols.values())
    assert not missing, f"history.tsv names tickers the SEC list lacks: {missing}"
    ents = read_entities()
    assert len(ents) >= 300 and all(e.source and e.names for e in ents)
    assert sum(e.country not in ("United States",) for e in ents) >= 300  # the 300 largest non-US companies
    bad = [e.entity for e in ents if e.us_line != "-" and e.us_line not in symbols]
    assert not bad, f"entities.tsv names US lines the SEC list lacks: {bad}"


@pytest.mark.parametrize("line", ["ZZ\tName\tN\t2015-01-01\t2014-01-01\tsrc", "ZZ\tName\tN\t-\t-\t", "ZZ\tName\tQ\t-\t-\tsrc"])
def test_history_rejects_bad_rows(tmp_path, line):
    p = tmp_path / "h.tsv"
    p.write_text(line + "\n")
    with pytest.raises(ValueError):
        read_history(p)


# ----------------------------------------------------------------- robustness
@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.dates(min_value=date(1990, 1, 1), max_value=date(2040, 1, 1)) | st.none())
def test_linking_at_any_date_never_raises_and_spans_are_valid(text, at):
    for lk in default_linker().link(text, at, unlisted=True):
        assert 0 <= lk.start <= lk.end
        assert (lk.ticker is None) == (lk.entity is not None) and lk.rule
