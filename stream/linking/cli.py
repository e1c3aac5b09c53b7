"""``finsent tickers link TEXT`` (show the links of a line of text) and ``finsent tickers build``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from stream.base.errors import UserError
from stream.linking import linker_for
from stream.linking.build import ALIASES, DEFAULT_CORPUS, DEFAULT_SEC, SYMBOLS, build_table, write_table
from stream.schema import link_tickers


def register(sub) -> None:
    p = sub.add_parser("tickers", help="entity linking: show the tickers linked in a text, rebuild the alias table")
    tsub = p.add_subparsers(dest="tickers_command", metavar="SUBCOMMAND")
    lk = tsub.add_parser("link", help="show which text links to which ticker, and by which rule")
    lk.add_argument("text", nargs="*", help="the text (default: one text a line on standard input)")
    lk.add_argument("--json", action="store_true", help="one JSON line per text: tickers and links")
    lk.set_defaults(func=cmd_link)
    b = tsub.add_parser("build", help="regenerate stream/linking/aliases.tsv and symbols.tsv from the SEC "
                                      "reference and curated.tsv")
    b.add_argument("--sec", type=Path, default=None,
                   help="SEC company tickers CSV (default ../shared/data/reference/sec_company_tickers.csv)")
    b.add_argument("--no-corpus", action="store_true",
                   help="do not read ../shared/data texts to find everyday words (wordfreq and the built-in list still apply)")
    b.set_defaults(func=cmd_build)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def cmd_link(args) -> int:
    settings = args.settings
    linker = linker_for(settings.aliases, settings.watchlist)
    texts = [" ".join(args.text)] if args.text else [line.rstrip("\n") for line in sys.stdin if line.strip()]
    for text in texts:
        tickers, links = link_tickers(linker, (), text)
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
    table = build_table(Path(sec), corpus=() if args.no_corpus else DEFAULT_CORPUS)
    write_table(table)
    kinds: dict[str, int] = {}
    for _, _, k, _ in table.aliases:
        kinds[k] = kinds.get(k, 0) + 1
    print(f"wrote {ALIASES} ({len(table.aliases)} names: "
          + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + f") and {SYMBOLS} ({len(table.symbols)} symbols)")
    return 0
