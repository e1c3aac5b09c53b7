"""Entity linking through the real stack: a small hand-labelled file of headlines (written for this
test) replayed into Kafka, linked by the real worker, stored in PostgreSQL with the reasons."""

from __future__ import annotations

import json
from datetime import UTC

from tests.integration.workers import Worker, finsent, query, wait_for, write_jsonl

# headline -> the listed companies it names (labelled by hand when the test was written)
LABELLED = [
    ("Boeing to cut 737 output after new defect", ["BA"]),
    ("JPMorgan's Dimon warns of a stormy economy", ["JPM"]),
    ("Alphabet's Google fined in EU ad-tech case", ["GOOGL"]),
    ("Target raises forecast as shoppers return", ["TGT"]),
    ("Analyst lifts price target on the sector", []),
    ("Acme Widgets (NYSE: KO) signs bottling deal", ["KO"]),
    ("Price Targets On AAP, CVS, GPC", ["AAP", "CVS", "GPC"]),
    ("Fed holds rates steady, signals patience", []),
    ("Shell profit jumps on gas trading", ["SHEL"]),
    ("Shell companies used to dodge sanctions, report says", []),
    ("$TSLA slides as Ford and GM cut EV prices", ["TSLA", "F", "GM"]),
    ("It is ON NOW for ALL of A sudden", []),
    ("Visa and Mastercard settle swipe-fee suit", ["V", "MA"]),
    ("The wage gap widens for the third year", []),
    ("Delta Air Lines sees strong summer demand", ["DAL"]),
    ("Oil rises as OPEC weighs output cuts", []),
    ("Benzinga's Volume Movers (KVHI, REGN, ZZZQX, AAWW)", ["KVHI", "REGN"]),  # unknown symbols never block
    ("UniCredit and Siemens shares rise", []),  # foreign issuers with no US line: no ticker
]


def _messages():
    for i, (title, _) in enumerate(LABELLED):
        yield {"id": f"lk{i}", "published_at": f"2024-03-04T14:{i:02d}:00Z", "title": title, "source": "test"}


def test_replayed_headlines_are_linked_by_name_and_explained(stack, settings, tmp_path):
    archive = write_jsonl(tmp_path / "labelled.jsonl", _messages())
    res = finsent(settings, "replay", str(archive), "--speed", "max")
    assert res.returncode == 0, res.stderr
    worker = Worker(settings, tmp_path / "worker.log", "--no-alerts").start()
    try:
        wait_for(lambda: query(settings, "SELECT count(*) FROM articles")[0][0] == len(LABELLED), 180,
                 "all labelled headlines stored", worker)
    finally:
        worker.stop()
    stored = dict(query(settings, "SELECT id, tickers FROM articles"))
    for i, (title, want) in enumerate(LABELLED):
        assert sorted(stored[f"lk{i}"]) == sorted(want), title
    # why is this headline under TGT? the analyst role can ask in SQL
    from storage.db import fetch_all

    why = fetch_all(settings.analyst_dsn, settings.schema,
                    "SELECT title, text, rule, span_start, span_end FROM article_ticker_links WHERE ticker = 'TGT'")
    assert why == [("Target raises forecast as shoppers return", "Target", "name", 0, 6)]
    rules = {r[0] for r in query(settings, "SELECT DISTINCT l->>'rule' FROM articles, jsonb_array_elements(ticker_links) l")}
    assert rules == {"name", "exchange", "symbol_list", "cashtag", "acronym"}
    # the ticker trends count the linked names
    counts = dict(query(settings, "SELECT scope, sum(articles) FROM sentiment_minute WHERE scope_kind = 'ticker' "
                                  "GROUP BY scope"))
    assert counts["BA"] == 1 and counts["GOOGL"] == 1 and "A" not in counts and "ALL" not in counts


def test_watchlist_and_in_process_replay(stack, settings, tmp_path):
    archive = write_jsonl(tmp_path / "labelled.jsonl", _messages())
    watch = tmp_path / "desk.csv"
    watch.write_text("ticker\nBA\nKO\n")
    res = finsent(settings, "replay", str(archive), "--schema", settings.schema, FINSENT_WATCHLIST=str(watch))
    assert res.returncode == 0, res.stderr
    stored = dict(query(settings, "SELECT id, tickers FROM articles"))
    assert stored["lk0"] == ["BA"] and stored["lk5"] == ["KO"] and stored["lk3"] == []  # TGT: outside
    outside = query(settings, "SELECT ticker, watched FROM article_ticker_links WHERE id = 'lk3'")
    assert outside == [("TGT", False)]  # the mention is stored, but makes no trend
    scopes = {r[0] for r in query(settings, "SELECT DISTINCT scope FROM sentiment_minute WHERE scope_kind = 'ticker'")}
    assert scopes == {"BA", "KO"}
    # the desk widens its watchlist: rescore --relink links again and moves the ticker buckets
    from datetime import datetime

    from storage import maintenance
    from storage.rescore import rescore
    from stream.linking import Linker
    from tests.support.fakes import HashEngine

    st = rescore(settings.dsn, settings.schema, HashEngine(), datetime(2024, 3, 4, tzinfo=UTC),
                 only_stale=False, relink=Linker())
    assert st["updated"] == len(LABELLED) and st["changed_tickers"] == 9
    stored = dict(query(settings, "SELECT id, tickers FROM articles"))
    for i, (title, want) in enumerate(LABELLED):
        assert sorted(stored[f"lk{i}"]) == sorted(want), title
    assert query(settings, "SELECT ticker, watched FROM article_ticker_links WHERE id = 'lk3'") == [("TGT", True)]
    scopes = {r[0] for r in query(settings, "SELECT DISTINCT scope FROM sentiment_minute WHERE scope_kind = 'ticker'")}
    assert scopes == {t for _, want in LABELLED for t in want}
    res = maintenance.verify(settings.dsn, settings.schema)
    assert (res["minute"], res["hour"], res["day"]) == (0, 0, 0), res["examples"]
    # finsent classify and the debug command link the same way
    res = finsent(settings, "tickers", "link", "--json", "Alphabet's Google fined")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["tickers"] == ["GOOGL"]
