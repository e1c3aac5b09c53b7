"""``finsent tickers link TEXT`` (show the links of a line of text) and ``finsent tickers build``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from stream.base.errors import UserError
from stream.linking import linker_for, read_user_companies
from stream.linking.build import (
    ALIASES,
    CIKS,
    DEFAULT_CORPUS,
    DEFAULT_SEC,
    INDEX_FILE,
    SYMBOLS,
    build_table,
    write_table,
)
from stream.messages.raw_message import link_tickers


def register(sub) -> None:
    p = sub.add_parser("tickers", help="entity linking: show the tickers linked in a text, rebuild the alias table")
    tsub = p.add_subparsers(dest="tickers_command", metavar="SUBCOMMAND")
    lk = tsub.add_parser("link", help="show which text links to which ticker, and by which rule")
    lk.add_argument("text", nargs="*", help="the text (default: one text a line on standard input)")
    lk.add_argument("--json", action="store_true", help="one JSON line per text: tickers and links")
    lk.add_argument("--at", metavar="DATE", help="read the text as published on DATE (YYYY-MM-DD): the names "
                                                 "and symbols of that day (default: today's)")
    lk.set_defaults(func=cmd_link)
    b = tsub.add_parser("build", help="regenerate stream/linking/aliases.tsv and symbols.tsv from the SEC "
                                      "reference, curated.tsv, history.tsv, entities.tsv and your companies")
    b.add_argument("--sec", type=Path, default=None,
                   help="SEC company tickers CSV (default ../shared/data/reference/sec_company_tickers.csv)")
    b.add_argument("--no-corpus", action="store_true",
                   help="do not read ../shared/data texts to find everyday words (wordfreq and the built-in list still apply)")
    b.add_argument("--companies", type=Path, action="append", default=[], metavar="CSV",
                   help="a file of your extra companies, ticker,name[,from,until] (names separated by '|'), "
                        "built in beside the shipped reference; repeatable")
    b.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="write aliases.tsv, symbols.tsv and ciks.tsv (and indexes.tsv) into DIR instead of the package")
    b.set_defaults(func=cmd_build)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def cmd_link(args) -> int:
    settings = args.settings
    linker = linker_for(settings.aliases, settings.watchlist)
    texts = [" ".join(args.text)] if args.text else [line.rstrip("\n") for line in sys.stdin if line.strip()]
    for text in texts:
        tickers, links = link_tickers(linker, (), text, at=args.at)
        if args.json:
            print(json.dumps({"text": text, "tickers": list(tickers), "links": list(links)}, ensure_ascii=False))
            continue
        print(f"{text}\n  tickers: {' '.join(tickers) or '(none)'}")
        for lk in links:
            watch = "" if lk.get("watch", True) else "   (outside the watchlist)"
            print(f"  {lk['ticker']:<8} {lk['rule']:<12} [{lk['start']}:{lk['end']}] {lk['text']!r}{watch}")
    return 0


def cmd_build(args) -> int:
    sec = args.sec or DEFAULT_SEC
    if not Path(sec).is_file():
        raise UserError(f"SEC reference not found: {sec} (pass --sec PATH)")
    companies = []
    for path in args.companies:
        try:
            companies += read_user_companies(path)
        except (OSError, ValueError) as exc:
            raise UserError(f"--companies {path}: {exc}") from None
    table = build_table(Path(sec), corpus=() if args.no_corpus else DEFAULT_CORPUS, companies=companies)
    aliases, symbols, indexes, ciks = ALIASES, SYMBOLS, INDEX_FILE, CIKS
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        aliases, symbols, indexes, ciks = (args.out / p.name for p in (ALIASES, SYMBOLS, INDEX_FILE, CIKS))
    write_table(table, aliases, symbols, indexes, ciks)
    kinds: dict[str, int] = {}
    for row in table.aliases:
        kinds[row.kind] = kinds.get(row.kind, 0) + 1
    print(f"wrote {aliases} ({len(table.aliases)} names: "
          + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + f") and {symbols} ({len(table.symbols)} symbols)"
          + (f"; {len(companies)} names from your companies" if companies else ""))
    return 0
