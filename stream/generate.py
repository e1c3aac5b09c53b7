"""Synthetic news stream: a realistic trading day of headlines, with planted negative spikes.

Used by ``finsent demo``, the alert quality tests and the benchmarks::

    from stream.generate import Spike, generate_stream, universe
    spike = Spike(ticker="NRVX", at=datetime(2025, 3, 13, 17, 0, tzinfo=timezone.utc), size=12)
    for msg in generate_stream(start, timedelta(hours=16), tickers=200, rate_per_min=40, spikes=[spike], seed=0):
        ...  # news.raw messages (DESIGN.md schema), in event-time order

What a generated day looks like (event times; the trading calendar is New
York's, anchored on the ``start`` date):

* **Universe**: ``tickers`` fictional listed companies (names, tickers and
  sectors are made up, so no headline can be mistaken for news about a real
  company), with Zipf-like news popularity (a few names get most coverage).
* **Volume** follows an intraday profile: quiet overnight, pre-market pick-up,
  a burst at the 09:30 open, a midday lull, the close and after-hours earnings,
  with minute-to-minute overdispersion (a slowly varying log-normal factor).
  ``rate_per_min`` is the rate at profile 1.0 (a normal mid-session minute).
* **Mix**: ~70 % of items are about one company (sometimes two), the rest are
  market-wide (macro, Fed, rates, FX, oil, metals, politics).  Topics are the
  20 of the Twitter Financial News topic set; sentiment per topic is roughly
  15 % negative, 60 % neutral, 25 % positive.
* **Scheduled bursts** (``events=True``): a macro data release at 08:30, an
  FOMC decision at 14:00 and ~8 % of the companies reporting earnings (07:00
  before the open or 16:05 after the close), each a burst of mixed coverage
  that decays over the following half hour.  Mixed: beats, misses and in-line
  results all bring volume, not a one-sided negative flood.
* **Planted spikes** (``spikes=[Spike(...)]``): ``size`` unmistakably negative
  headlines about one ticker (or one topic) within ``duration_s`` seconds --
  plunges, probes, downgrades, recalls, resignations, lawsuits, spread over
  the topics such news falls into.

Deterministic by ``seed``: the same arguments give the same messages, ids
included.  The background does not depend on the spikes (planting a spike adds
items and changes nothing else), so a calm day and the same day with spikes can
be compared item for item.  ``truth=True`` adds a ``truth`` object (the
generator's own sentiment, topic and event) to every message; the pipeline
keeps unknown fields in ``articles.extra``.

Fast: ~100k items in a few seconds (pure Python, one pass, constant memory
per minute).
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
import re
from dataclasses import dataclass
from datetime import date, datetime, time as dtime, timedelta, timezone
from functools import lru_cache
from string import Formatter
from typing import Iterable, Iterator, Sequence
from zoneinfo import ZoneInfo

from stream.base.labels import SENTIMENTS, TOPICS

NY = ZoneInfo("America/New_York")
DEFAULT_DAY = date(2025, 3, 13)  # a Thursday


# ============================================================================ universe
@dataclass(frozen=True)
class Company:
    ticker: str
    name: str
    sector: str
    weight: float  # share of company news about it (sums to 1 over the universe)


SECTORS = (  # name, share of companies, name suffixes, product words
    ("Technology", 0.22, ("Systems", "Networks", "Software", "Semiconductor", "Labs", "Technologies", "Data"),
     ("chip", "cloud platform", "software suite", "AI server", "smartphone", "data center")),
    ("Health Care", 0.13, ("Therapeutics", "Biosciences", "Health", "Pharmaceuticals", "Medical", "Genomics"),
     ("cancer drug", "vaccine", "diabetes treatment", "heart device", "gene therapy", "diagnostic test")),
    ("Financials", 0.13, ("Bancorp", "Financial", "Capital", "Insurance", "Trust", "Holdings"),
     ("credit card", "wealth platform", "mortgage business", "payments app", "insurance unit", "lending arm")),
    ("Consumer", 0.15, ("Brands", "Foods", "Retail", "Apparel", "Restaurants", "Beverages", "Motors"),
     ("sneaker line", "store format", "snack brand", "electric SUV", "loyalty program", "beverage line")),
    ("Industrials", 0.12, ("Industries", "Aerospace", "Logistics", "Machinery", "Rail", "Engineering"),
     ("jet engine", "freight network", "excavator", "defense system", "factory robot", "cargo fleet")),
    ("Energy", 0.07, ("Energy", "Petroleum", "Oil & Gas", "Resources", "Midstream"),
     ("shale field", "LNG terminal", "pipeline", "offshore rig", "refinery", "drilling program")),
    ("Materials", 0.05, ("Mining", "Materials", "Chemicals", "Steel", "Metals"),
     ("copper mine", "lithium project", "steel mill", "gold mine", "chemical plant", "smelter")),
    ("Utilities", 0.04, ("Utilities", "Power", "Electric", "Water"),
     ("solar farm", "grid upgrade", "nuclear plant", "wind project", "rate plan", "power plant")),
    ("Real Estate", 0.04, ("Realty", "Properties", "REIT", "Land"),
     ("office tower", "warehouse portfolio", "mall", "apartment complex", "data center campus", "hotel portfolio")),
    ("Communication", 0.05, ("Media", "Telecom", "Communications", "Interactive", "Studios"),
     ("streaming service", "5G network", "video game", "ad platform", "broadband plan", "film slate")),
)
_SECTOR_INFO = {s[0]: s for s in SECTORS}
_SYL1 = ("Nor", "Val", "Hal", "Ter", "Quan", "Lum", "Ast", "Bry", "Cor", "Dal", "Ev", "Fal", "Gran", "Hel",
         "Ion", "Jun", "Kal", "Lyr", "Mer", "Nov", "Or", "Pel", "Quil", "Ros", "Sol", "Tal", "Ul", "Ver",
         "Wyn", "Xen", "Yar", "Zel", "Ard", "Bel", "Cal", "Dor", "Ens", "Fer", "Gal", "Har", "Kes", "Lan",
         "Mar", "Nex", "Ost", "Pra", "Rel", "Sar", "Tor", "Vex")
_SYL2 = ("ex", "ara", "ion", "ora", "ent", "ix", "on", "is", "a", "eon", "ium", "ant", "ova", "eus", "ity",
         "ane", "ico", "yx", "ar", "el", "wick", "field", "stone", "gate", "point", "bridge", "crest", "ridge")


def _ticker_for(name: str, taken: set[str], rng: random.Random) -> str:
    letters = re.sub(r"[^A-Z]", "", name.upper())
    consonants = letters[0] + re.sub(r"[AEIOU]", "", letters[1:])
    for cand in (consonants[:4], letters[:4], consonants[:3], letters[:3], letters[0] + consonants[1:3] + letters[-1]):
        if len(cand) >= 3 and cand not in taken:
            return cand
    while True:
        cand = letters[0] + "".join(rng.choice("ABCDEFGHKLMNPRSTVWXZ") for _ in range(3))
        if cand not in taken:
            return cand


@lru_cache(maxsize=16)
def universe(n: int = 200, zipf: float = 1.0, offset: float = 8.0) -> tuple[Company, ...]:
    """``n`` fictional companies, most covered first (deterministic; independent of the stream seed)."""
    rng = random.Random("finsent-universe-v1")
    names: set[str] = set()
    taken: set[str] = set()
    sector_names = [s[0] for s in SECTORS]
    sector_cum = list(_cumulative([s[1] for s in SECTORS]))
    out = []
    raw_w = [1.0 / (i + offset) ** zipf for i in range(n)]
    total = sum(raw_w)
    for i in range(n):
        sector = sector_names[bisect.bisect_right(sector_cum, rng.random() * sector_cum[-1])]
        for _ in range(1000):
            base = rng.choice(_SYL1) + rng.choice(_SYL2)
            name = f"{base} {rng.choice(_SECTOR_INFO[sector][2])}"
            if base not in names:
                break
        names.add(base)
        tk = _ticker_for(base, taken, rng)
        taken.add(tk)
        out.append(Company(tk, name, sector, raw_w[i] / total))
    return tuple(out)


def _cumulative(weights: Sequence[float]) -> Iterator[float]:
    acc = 0.0
    for w in weights:
        acc += w
        yield acc


def quiet_tickers(n: int = 200, k: int = 5, seed: int = 0) -> list[str]:
    """``k`` mid/low-coverage tickers (good spike targets: 1-3 articles an hour)."""
    cos = universe(n)
    lo, hi = len(cos) // 4, len(cos)
    rng = random.Random(f"quiet:{seed}")
    return [c.ticker for c in rng.sample(cos[lo:hi], k)]


# ============================================================================ templates
# Slots: {co} company, {tk} ticker, {co2}/{tk2} a second company, {pct} a normal move,
# {bigpct} a large move, {bank} a broker, {pt}/{pt2} price targets, {q} quarter, {eps}/{eps2},
# {amt} billions, {mamt} millions, {exec} executive role, {person}, {product}, {div}, {yld},
# {bp}, {idx}, {cur}, {country}, {n}, {agency}, {regulator}, {month}, {day}.
T: dict[str, dict[str, tuple[str, ...]]] = {}


def _t(topic: str, negative: str, neutral: str, positive: str) -> None:
    T[topic] = {
        s: tuple(line.strip() for line in block.strip().splitlines() if line.strip())
        for s, block in zip(SENTIMENTS, (negative, neutral, positive))
    }


_t("Analyst Update", """
{bank} downgrades {co} to underweight, cuts price target to ${pt}
{co} cut to sell at {bank} on weakening demand
{bank} slashes {co} price target to ${pt} from ${pt2}, sees more downside
{co} downgraded to neutral at {bank} as margins come under pressure
""", """
{bank} initiates coverage of {co} with a neutral rating
{bank} keeps {co} at equal weight, price target ${pt}
{co} price target adjusted to ${pt} at {bank}, rating unchanged
{bank} reiterates hold on {co} ahead of results
""", """
{bank} upgrades {co} to buy, raises price target to ${pt}
{co} upgraded to outperform at {bank} on strong demand
{bank} lifts {co} price target to ${pt} from ${pt2}, sees big upside
{co} added to {bank} top picks list
""")
_t("Fed, Central Banks", """
Fed officials signal rates will stay higher for longer, dashing hopes for cuts
Central bank warns inflation fight is far from over
Fed minutes show officials worried about stubborn inflation
{country} central bank unexpectedly hikes rates to fight inflation
""", """
Fed leaves interest rates unchanged, as expected
Fed chair to testify before Congress on monetary policy next week
{country} central bank holds rates steady at {yld}%
Fed governor speaks on the economic outlook at a conference
""", """
Fed signals rate cuts are coming as inflation cools
Central bank cuts rates by {bp} basis points to support growth
Fed officials say soft landing is within reach
{country} central bank eases policy, boosting markets
""")
_t("Company, Product News", """
{co} delays launch of its new {product} after quality problems
{co} recalls {product} over safety defects
{co} to cut {n} thousand jobs as demand weakens
{co} loses key {product} contract to a rival
""", """
{co} unveils new {product} at its annual event
{co} to open a new {product} facility in {state}
{co} announces partnership with {co2} on {product}
{co} schedules investor day for {month} {day}
""", """
{co} wins major {product} contract worth ${mamt} million
{co} launches {product} to strong early demand
{co} expands {product} production as orders surge
{co} secures record orders for its {product}
""")
_t("Treasuries, Corporate Debt", """
{co} bonds slump after rating downgrade
Treasury yields spike to {yld}%, rattling investors
{agency} cuts {co} credit rating to junk
Weak Treasury auction sends yields sharply higher
""", """
{co} prices ${amt} billion bond offering
10-year Treasury yield holds near {yld}%
{co} files to issue senior notes due {year}
Treasury to auction ${amt0} billion of 10-year notes
""", """
{co} bonds rally after upgrade by {agency}
Strong demand for {co} debt sale lets it cut borrowing costs
{agency} upgrades {co} to investment grade
Treasuries rally as yields fall to {yld}%
""")
_t("Dividend", """
{co} suspends its dividend to conserve cash
{co} cuts quarterly dividend by half
{co} slashes payout as earnings slump
""", """
{co} declares quarterly dividend of ${div} per share
{co} maintains dividend at ${div} a share
{co} sets record date for quarterly dividend
""", """
{co} raises quarterly dividend by {pct}%
{co} boosts dividend and announces ${amt} billion buyback
{co} hikes payout for the tenth straight year
""")
_t("Earnings", """
{co} misses {q} profit estimates and cuts full-year guidance
{co} swings to a loss in {q} as sales drop
{co} {q} revenue falls short, outlook disappoints
{co} warns of weaker {q} results, shares slide
""", """
{co} reports {q} earnings of ${eps} per share, in line with estimates
{co} to report {q} results on {month} {day}
{co} {q} revenue of ${amt} billion matches expectations
{co} earnings call scheduled for after the close
""", """
{co} beats {q} estimates and raises full-year guidance
{co} {q} profit jumps, topping forecasts
{co} posts record {q} revenue on strong demand
{co} earnings beat: EPS ${eps} vs ${eps2} expected
""")
_t("Energy, Oil", """
Oil prices tumble as demand fears grow
{co} shuts {product} after leak, output falls
Crude slides {pct}% on surprise inventory build
{co} cuts production outlook as costs climb
""", """
Oil prices steady ahead of OPEC meeting
{co} to sell stake in {product}
Crude inventories match forecasts
{co} completes maintenance at its {product}
""", """
Oil prices jump {pct}% as supply tightens
{co} raises output target after strong {product} results
{co} discovers large new reserves at its {product}
Crude rallies on strong demand outlook
""")
_t("Financials", """
{co} sets aside more money for bad loans as defaults rise
Bank stocks slide as {co} warns on loan losses
{co} hit by trading losses in {q}
{co} faces deposit outflows, shares fall
Bank stocks slide on worries about bad loans
""", """
{co} completes annual stress test
{co} names new head of its {product}
{co} to present at a financial services conference
Regional banks report {q} deposit figures
Banks prepare for new capital rules
""", """
{co} posts strong loan growth and record fee income
{co} wins approval for bigger buyback after stress test
Bank stocks rally as {co} beats on trading revenue
{co} net interest income rises {pct}%
Bank stocks rally on strong lending data
""")
_t("Currencies", """
Dollar slumps to a {n}-month low against the euro
{country} currency plunges to record low
Yen tumbles as intervention fears fade
""", """
Dollar little changed ahead of jobs data
Euro trades near {fx} against the dollar
Currency markets steady in light trade
""", """
Dollar rallies on strong economic data
{country} currency surges after rate decision
Euro climbs to a {n}-month high
""")
_t("General News, Opinion", """
Investors brace for a rough week as worries mount
Opinion: the market is ignoring serious risks
Consumer confidence sinks to a {n}-month low
""", """
What to watch in markets this week
Five things investors are watching today
Opinion: how to think about {sector} stocks now
""", """
Opinion: why the rally still has room to run
Consumer confidence rises to a {n}-month high
Investors grow more upbeat on the economy
""")
_t("Gold, Metals, Materials", """
Copper prices slump on weak demand from China
{co} cuts output guidance at its {product}
Gold falls as dollar strengthens
{co} halts operations at {product} after accident
""", """
Gold holds near ${gold} an ounce
{co} updates reserves at its {product}
Metal prices mixed in quiet trade
""", """
Gold hits a record high as investors seek safety
Copper surges on supply concerns
{co} raises production target at {product}
""")
_t("IPO", """
{co} IPO prices below range as demand disappoints
Shares of newly listed {co} sink in trading debut
{co} postpones IPO citing market conditions
""", """
{co} files for an initial public offering
{co} sets terms for IPO of {n} million shares
{co} IPO expected to price next week
""", """
{co} IPO prices above range on strong demand
Shares of {co} soar {bigpct}% in trading debut
{co} upsizes IPO after heavy demand
""")
_t("Legal, Regulation", """
{regulator} sues {co} over misleading investors
{co} faces antitrust probe over {product} practices
{co} fined ${mamt} million for violations
{co} hit with class action lawsuit over {product}
""", """
{co} responds to {regulator} inquiry
Court hearing in {co} patent case set for {month}
{regulator} publishes new rules for {sector} companies
{co} files routine disclosure with {regulator}
""", """
{co} wins dismissal of lawsuit
{regulator} approves {co} {product}
{co} settles dispute on favorable terms
Court rules in favor of {co} in patent case
""")
_t("M&A, Investments", """
{co} deal to buy {co2} collapses
{co2} rejects takeover offer from {co}
Regulators move to block {co} acquisition of {co2}
""", """
{co} in talks to acquire {co2}
{co} completes acquisition of {co2}
{co} takes {pct}% stake in {co2}
{co} explores sale of its {product} unit
""", """
{co} agrees to buy {co2} for ${amt} billion at a big premium
{co2} shares soar on takeover bid from {co}
{co} wins bidding war for {co2}
""")
_t("Macro", """
Inflation jumps more than expected to {yld}%
Economy unexpectedly shrinks in the {qtr} quarter
Jobless claims surge to highest in {n} months
Retail sales drop sharply, raising recession fears
""", """
Economists expect inflation of {yld}% in {month}
Jobless claims little changed last week
GDP report due on {month} {day}
Consumer prices rise {pct0}% in line with forecasts
""", """
Economy adds more jobs than expected
Inflation cools to {yld}%, lowest in {n} months
Retail sales beat forecasts as consumers keep spending
GDP growth tops estimates
""")
_t("Markets", """
Stocks slide as recession fears grip Wall Street
{idx} falls {pct}% in broad sell-off
Stocks tumble as yields jump
Wall Street suffers worst day in {n} weeks
""", """
Stocks little changed as investors await data
{idx} ends little changed
Futures steady ahead of earnings
Markets mixed at midday
""", """
Stocks rally to record highs
{idx} jumps {pct}% as tech leads gains
Wall Street rises on upbeat earnings
Stocks climb as inflation cools
""")
_t("Politics", """
Government shutdown fears weigh on markets
New tariffs threaten {sector} companies
Political gridlock raises debt ceiling worries
""", """
Congress debates spending bill
Senate committee schedules vote on {sector} regulation
Trade talks with {country} to resume next week
""", """
Lawmakers reach deal to avert shutdown
Tariff relief boosts {sector} stocks
Trade deal with {country} seen lifting exports
""")
_t("Personnel Change", """
{co} {exec} resigns abruptly amid investigation
{co} ousts its {exec} after weak results
{co} {exec} departs as turnaround stalls
""", """
{co} names {person} as new {exec}
{co} appoints {person} to its board
{co} {exec} to retire at year end, succession planned
""", """
{co} hires star executive {person} as {exec}
{co} shares rise as respected {exec} joins
{co} names proven leader {person} {exec}
""")
_t("Stock Commentary", """
Why {co} stock is a falling knife
{co} shares look expensive after the rally, analysts warn
3 reasons to avoid {co} stock
Is {co} in trouble? Investors are worried
""", """
Is {co} stock a buy right now?
{co} stock: what investors need to know
{co} vs {co2}: which stock is better?
Here's what to watch in {co} stock this week
""", """
Why {co} stock could double
{co} is a top stock to buy now
3 reasons {co} stock is a winner
{co} looks like a bargain after strong results
""")
_t("Stock Movement", """
{co} shares fall {pct}% in heavy trading
{co} stock slides {pct}% to {n}-week low
{co} drops {pct}% after disappointing update
{co} shares sink as investors sell
""", """
{co} shares little changed in early trading
{co} stock unchanged ahead of results
{co} trading volume above average
{co} shares move in line with the market
""", """
{co} shares jump {pct}% to a record high
{co} stock surges {pct}% on strong demand
{co} rallies {pct}% after upbeat update
{co} shares climb to {n}-week high
""")

# Planted spikes: unmistakably negative, spread over the topics such news falls into.
SHOCK: tuple[tuple[str, str], ...] = (
    ("Stock Movement", "{co} shares plunge {bigpct}% after the company slashes its outlook"),
    ("Stock Movement", "{co} stock crashes {bigpct}% in its worst day on record"),
    ("Stock Movement", "{co} shares collapse as investors flee"),
    ("Legal, Regulation", "{regulator} opens fraud investigation into {co}, shares tumble"),
    ("Legal, Regulation", "{co} hit with class action lawsuit over misleading investors"),
    ("Legal, Regulation", "{co} fined ${mamt} million for safety violations, stock sinks"),
    ("Analyst Update", "{co} downgraded to sell at {bank}; price target slashed to ${pt}"),
    ("Analyst Update", "{bank} cuts {co} to underperform, warns of steep losses"),
    ("Company, Product News", "{co} stock sinks after recall of {n} thousand faulty {product} units over fire risk"),
    ("Company, Product News", "{co} loses its biggest customer, shares plunge"),
    ("Company, Product News", "{co} shares plunge after deadly explosion halts {product} production"),
    ("Earnings", "{co} warns of a big loss and withdraws guidance"),
    ("Earnings", "{co} badly misses estimates as sales collapse"),
    ("Personnel Change", "{co} shares tumble as {exec} is ousted amid accounting fraud scandal"),
    ("Treasuries, Corporate Debt", "{agency} cuts {co} to junk, bonds plunge"),
    ("Dividend", "{co} suspends dividend as losses mount"),
    ("Stock Commentary", "Short seller alleges fraud at {co}; stock sinks"),
    ("General News, Opinion", "{co} data breach exposes millions of customers, shares slide"),
)
TOPIC_SHOCK: dict[str, tuple[str, ...]] = {
    "Energy, Oil": ("Oil prices crash {bigpct}% as OPEC deal collapses", "Crude plunges on a massive supply glut",
                    "Energy stocks tumble as oil prices collapse", "Oil sinks to a multi-year low as demand craters"),
    "Macro": ("Economy plunges into recession as GDP shrinks sharply", "Inflation soars to {yld}%, far worse than feared",
              "Jobless claims explode, signaling a deep downturn", "Retail sales collapse in the worst drop in years"),
    "Markets": ("Stocks crash as panic selling sweeps Wall Street", "{idx} plunges {bigpct}% in a brutal sell-off",
                "Markets tumble as recession fears explode", "Wall Street suffers its worst day in years"),
    "Financials": ("Bank stocks plunge as deposit run spreads", "Lender collapses, sparking banking crisis fears",
                   "Banks tumble on massive loan losses", "Regional banks crash as depositors flee"),
}
_GENERIC_SHOCK = ("{topic_name} news turns sharply negative as losses mount",
                  "Selling pressure hits {topic_name} as worries deepen")

MARKET_SUMMARIES = {
    "negative": ("Traders said the mood was gloomy.", "Analysts warned of further declines.",
                 "The news added to worries about the economy."),
    "neutral": ("Traders are waiting for more data.", "Figures were released by the statistics office.",
                "Further details are expected later this week."),
    "positive": ("Traders welcomed the news.", "Analysts said the outlook is improving.",
                 "The news eased worries about the economy."),
}
SUMMARIES = {
    "negative": ("The company cited weaker demand and rising costs.", "Investors reacted badly to the news.",
                 "Analysts warned that more losses could follow."),
    "neutral": ("The company did not comment further.", "Details were disclosed in a regulatory filing.",
                "The company will provide more information at a later date."),
    "positive": ("Analysts expect the strong momentum to continue.", "Investors welcomed the news.",
                 "The company said demand remains robust."),
}

BANKS = ("Whitmore Securities", "Calder Partners", "Northgate Research", "Ashby & Co", "Pemberton Capital",
         "Kingsley Markets", "Redfern Advisors", "Stanwick Group")
AGENCIES = ("Apex Ratings", "Meridian Credit", "Sterling Ratings")
REGULATORS = ("The SEC", "The FTC", "The Justice Department", "The CFPB", "State regulators")
EXECS = ("CEO", "CFO", "COO", "chief technology officer", "president")
FIRST = ("Maria", "James", "Priya", "Daniel", "Elena", "Marcus", "Aisha", "Thomas", "Sofia", "Kenji", "Laura", "David")
LAST = ("Alvarez", "Brennan", "Chen", "Dubois", "Eriksen", "Fischer", "Garcia", "Hughes", "Ivanova", "Kowalski",
        "Lindqvist", "Moreau", "Okafor", "Patel", "Rossi", "Schmidt", "Tanaka", "Walsh")
COUNTRIES = ("Japan", "UK", "Canada", "Australia", "Brazil", "India", "Mexico", "Switzerland", "Sweden", "Korea")
STATES = ("Texas", "Ohio", "Arizona", "Georgia", "North Carolina", "Indiana", "Nevada", "Tennessee")
INDICES = ("S&P 500", "Nasdaq", "Dow", "Russell 2000")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
OUTLETS = (("Meridian Newswire", "meridian-newswire.example"), ("Ledger Daily", "ledger-daily.example"),
           ("Tickertape Wire", "tickertape.example"), ("Harbor Street Journal", "harborstreet.example"),
           ("Market Pulse", "marketpulse.example"), ("Capital Desk", "capitaldesk.example"),
           ("Bullhorn Finance", "bullhorn.example"), ("Quarterly Times", "quarterlytimes.example"))


def _slots_fn():
    r2 = lambda lo, hi, nd=1: lambda rng, c: f"{rng.uniform(lo, hi):.{nd}f}"  # noqa: E731
    return {
        "pct": r2(0.8, 4.9), "pct0": r2(0.1, 0.4), "bigpct": lambda rng, c: str(rng.randint(12, 38)),
        "bank": lambda rng, c: rng.choice(BANKS), "agency": lambda rng, c: rng.choice(AGENCIES),
        "regulator": lambda rng, c: rng.choice(REGULATORS), "exec": lambda rng, c: rng.choice(EXECS),
        "person": lambda rng, c: f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        "pt": lambda rng, c: str(rng.randint(12, 480)), "pt2": lambda rng, c: str(rng.randint(12, 480)),
        "q": lambda rng, c: f"Q{rng.randint(1, 4)}", "qtr": lambda rng, c: rng.choice(("first", "second", "third", "fourth")),
        "eps": r2(0.05, 4.5, 2), "eps2": r2(0.05, 4.5, 2), "amt": r2(1.1, 9.8), "amt0": lambda rng, c: str(rng.choice((24, 39, 42, 58))),
        "mamt": lambda rng, c: str(rng.randint(20, 950)), "div": r2(0.05, 1.6, 2), "yld": r2(2.1, 5.4, 2),
        "bp": lambda rng, c: rng.choice(("25", "50")), "idx": lambda rng, c: rng.choice(INDICES),
        "country": lambda rng, c: rng.choice(COUNTRIES), "state": lambda rng, c: rng.choice(STATES),
        "n": lambda rng, c: str(rng.randint(2, 52)), "month": lambda rng, c: rng.choice(MONTHS),
        "day": lambda rng, c: str(rng.randint(1, 28)), "year": lambda rng, c: str(rng.randint(2027, 2055)),
        "fx": r2(1.02, 1.18, 4), "gold": lambda rng, c: f"{rng.randint(2000, 3100):,}",
        "sector": lambda rng, c: (c.sector if c else rng.choice(SECTORS)[0]).lower(),
        "product": lambda rng, c: rng.choice(_SECTOR_INFO[c.sector][3] if c else ("product",)),
    }


_SLOTS = _slots_fn()
_COMPANY_SLOTS = {"co", "tk", "co2", "tk2", "topic_name"}


@lru_cache(maxsize=None)
def _fields(template: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f for _, f, _, _ in Formatter().parse(template) if f))


def _render(template: str, rng: random.Random, co: Company | None, co2: Company | None = None, topic: str | None = None) -> str:
    vals = {}
    for f in _fields(template):
        if f == "co":
            vals[f] = co.name if co else "The company"
        elif f == "tk":
            vals[f] = co.ticker if co else ""
        elif f == "co2":
            vals[f] = co2.name if co2 else "a rival"
        elif f == "tk2":
            vals[f] = co2.ticker if co2 else ""
        elif f == "topic_name":
            vals[f] = topic or "The market"
        else:
            vals[f] = _SLOTS[f](rng, co)
    text = template.format(**vals)
    return text[0].upper() + text[1:]


# Topic mixes (topic, weight) and sentiment mixes (negative, neutral, positive).
COMPANY_TOPICS = (("Stock Movement", 0.22), ("Company, Product News", 0.20), ("Stock Commentary", 0.11),
                  ("Analyst Update", 0.12), ("Earnings", 0.07), ("Legal, Regulation", 0.05),
                  ("M&A, Investments", 0.05), ("Personnel Change", 0.04), ("Dividend", 0.03), ("IPO", 0.01),
                  ("Treasuries, Corporate Debt", 0.02), ("SECTOR", 0.05), ("General News, Opinion", 0.03))
SECTOR_TOPIC = {"Energy": "Energy, Oil", "Financials": "Financials", "Materials": "Gold, Metals, Materials"}
MARKET_TOPICS = (("Markets", 0.22), ("Macro", 0.18), ("Fed, Central Banks", 0.12), ("Treasuries, Corporate Debt", 0.08),
                 ("Currencies", 0.08), ("Energy, Oil", 0.09), ("Gold, Metals, Materials", 0.06), ("Politics", 0.08),
                 ("General News, Opinion", 0.09), ("Financials", 0.04))
SENTIMENT_MIX = {
    "Analyst Update": (0.17, 0.43, 0.40), "Fed, Central Banks": (0.17, 0.63, 0.20),
    "Company, Product News": (0.10, 0.62, 0.28), "Treasuries, Corporate Debt": (0.15, 0.65, 0.20),
    "Dividend": (0.05, 0.55, 0.40), "Earnings": (0.17, 0.48, 0.35), "Energy, Oil": (0.20, 0.50, 0.30),
    "Financials": (0.15, 0.60, 0.25), "Currencies": (0.17, 0.63, 0.20), "General News, Opinion": (0.15, 0.70, 0.15),
    "Gold, Metals, Materials": (0.17, 0.53, 0.30), "IPO": (0.10, 0.60, 0.30), "Legal, Regulation": (0.25, 0.63, 0.12),
    "M&A, Investments": (0.08, 0.55, 0.37), "Macro": (0.20, 0.60, 0.20), "Markets": (0.20, 0.50, 0.30),
    "Politics": (0.17, 0.70, 0.13), "Personnel Change": (0.10, 0.75, 0.15), "Stock Commentary": (0.15, 0.50, 0.35),
    "Stock Movement": (0.20, 0.40, 0.40),
}
# Intraday volume profile (New York hour, multiplier); linear in between.
PROFILE = ((0.0, 0.10), (4.0, 0.15), (6.0, 0.35), (7.0, 0.55), (8.0, 0.70), (8.5, 0.85), (9.5, 1.0), (9.75, 1.8),
           (10.5, 1.3), (12.0, 0.9), (13.5, 0.8), (14.0, 1.0), (15.0, 1.1), (15.75, 1.5), (16.0, 1.4), (16.5, 1.2),
           (17.5, 0.6), (20.0, 0.3), (24.0, 0.1))


def profile(hour: float) -> float:
    """Volume multiplier at a New York hour of day."""
    for (h0, v0), (h1, v1) in zip(PROFILE, PROFILE[1:]):
        if h0 <= hour <= h1:
            return v0 + (v1 - v0) * (hour - h0) / (h1 - h0)
    return PROFILE[-1][1]


# ============================================================================ spikes and events
@dataclass(frozen=True)
class Spike:
    """A planted burst of negative news: about ``ticker`` (or, without one, ``topic``)."""

    ticker: str | None = None
    at: datetime | None = None  # start of the burst (event time, aware)
    size: int = 12  # negative articles
    duration_s: int = 180  # spread over this many seconds
    topic: str | None = None  # a topic-wide burst (e.g. "Energy, Oil") when ticker is None

    def __post_init__(self):
        if self.at is None:
            raise ValueError("Spike.at is required")
        if self.ticker is None and self.topic is None:
            raise ValueError("Spike needs a ticker or a topic")
        if self.topic is not None and self.topic not in TOPICS:
            raise ValueError(f"unknown topic {self.topic!r}")
        if self.size < 1 or self.duration_s < 1:
            raise ValueError("Spike size and duration_s must be positive")

    @property
    def scope(self) -> tuple[str, str]:
        return ("ticker", self.ticker) if self.ticker else ("topic", self.topic)

    @property
    def end(self) -> datetime:
        return self.at + timedelta(seconds=self.duration_s)


@dataclass(frozen=True)
class _Item:
    t: float  # epoch seconds
    kind: str  # background | earnings | macro | fomc | spike
    key: str  # for the id
    title: str
    tickers: tuple[str, ...]
    topic: str
    sentiment: str
    summary: str | None
    outlet: int
    event: str


def day_start(day: date = DEFAULT_DAY, hour: float = 4.0) -> datetime:
    """``hour`` (New York time) on ``day``, as an aware UTC datetime."""
    h = int(hour)
    m = int(round((hour - h) * 60))
    return datetime.combine(day, dtime(h, m), tzinfo=NY).astimezone(timezone.utc)


def _ny(day: date, hour: float) -> float:
    return day_start(day, hour).timestamp()


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam < 30:
        limit, k, p = math.exp(-lam), 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k
    return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))


def _pick(rng: random.Random, items: Sequence[tuple[str, float]], cum: Sequence[float]) -> str:
    return items[bisect.bisect_right(cum, rng.random() * cum[-1])][0]


def _sentiment(rng: random.Random, mix: tuple[float, float, float]) -> str:
    x = rng.random()
    return "negative" if x < mix[0] else ("neutral" if x < mix[0] + mix[1] else "positive")


class _Gen:
    def __init__(self, tickers: int, seed: int):
        self.cos = universe(tickers)
        self.by_ticker = {c.ticker: c for c in self.cos}
        self.co_cum = list(_cumulative([c.weight for c in self.cos]))
        self.ct_cum = list(_cumulative([w for _, w in COMPANY_TOPICS]))
        self.mt_cum = list(_cumulative([w for _, w in MARKET_TOPICS]))
        self.seed = seed

    def company(self, rng: random.Random) -> Company:
        return self.cos[bisect.bisect_right(self.co_cum, rng.random() * self.co_cum[-1])]

    def item(self, rng: random.Random, t: float, kind: str, key: str, *, co: Company | None, topic: str,
             sentiment: str, event: str, co2: Company | None = None, template: str | None = None) -> _Item:
        if template is None:
            template = rng.choice(T[topic][sentiment])
        if "{co2}" in template and co2 is None:
            co2 = self.company(rng)
            if co is not None and co2.ticker == co.ticker:
                co2 = self.cos[(self.cos.index(co2) + 1) % len(self.cos)]
        title = _render(template, rng, co, co2, topic)
        tickers: tuple[str, ...] = ()
        if co is not None and "{co}" in template:
            tickers = (co.ticker,)
            if rng.random() < 0.25:
                title = f"${co.ticker} - {title}"
            if co2 is not None and "{co2}" in template:
                tickers = (co.ticker, co2.ticker)
        summary = None
        if rng.random() < 0.35:
            summary = rng.choice((SUMMARIES if tickers else MARKET_SUMMARIES)[sentiment])
        return _Item(t, kind, key, title, tickers, topic, sentiment, summary, rng.randrange(len(OUTLETS)), event)

    def background(self, rng: random.Random, t: float, key: str) -> _Item:
        if rng.random() < 0.70:
            co = self.company(rng)
            topic = _pick(rng, COMPANY_TOPICS, self.ct_cum)
            if topic == "SECTOR":
                topic = SECTOR_TOPIC.get(co.sector, "Company, Product News")
            sentiment = _sentiment(rng, SENTIMENT_MIX[topic])
            templates = [x for x in T[topic][sentiment] if "{co}" in x] or T[topic][sentiment]
            return self.item(rng, t, "background", key, co=co, topic=topic, sentiment=sentiment,
                             event="background", template=rng.choice(templates))
        topic = _pick(rng, MARKET_TOPICS, self.mt_cum)
        sentiment = _sentiment(rng, SENTIMENT_MIX[topic])
        templates = [x for x in T[topic][sentiment] if "{co}" not in x] or T[topic][sentiment]
        co = None
        template = rng.choice(templates)
        if "{co}" in template:
            co = self.company(rng)
        return self.item(rng, t, "background", key, co=co, topic=topic, sentiment=sentiment,
                         event="background", template=template)


def _events(g: _Gen, start: float, end: float, rate: float, seed: int) -> list[_Item]:
    """Scheduled bursts of every New York day touched by [start, end)."""
    out: list[_Item] = []
    scale = rate / 40.0
    d0 = datetime.fromtimestamp(start, NY).date()
    d1 = datetime.fromtimestamp(end, NY).date()
    day = d0
    while day <= d1:
        rng = random.Random(f"{seed}:events:{day.isoformat()}")

        def burst(at: float, size: int, mean_s: float, topics, mix, event: str, co: Company | None = None):
            tc = list(_cumulative([w for _, w in topics]))
            for i in range(size):
                t = at + min(rng.expovariate(1.0 / mean_s), 6 * mean_s)
                if not start <= t < end:
                    continue
                topic = _pick(rng, topics, tc)
                sentiment = _sentiment(rng, mix)
                cands = T[topic][sentiment]
                if co is not None:
                    cands = [x for x in cands if "{co}" in x] or cands
                out.append(g.item(rng, t, event.split(":")[0], f"{event}:{i}", co=co, topic=topic,
                                  sentiment=sentiment, event=event, template=rng.choice(cands)))

        if day.weekday() < 5:
            burst(_ny(day, 8.5), max(3, round(45 * scale)), 420.0,
                  (("Macro", 0.45), ("Markets", 0.2), ("Treasuries, Corporate Debt", 0.15), ("Currencies", 0.1),
                   ("Fed, Central Banks", 0.1)), (0.22, 0.56, 0.22), f"macro:{day}")
            burst(_ny(day, 14.0), max(3, round(40 * scale)), 480.0,
                  (("Fed, Central Banks", 0.5), ("Markets", 0.2), ("Treasuries, Corporate Debt", 0.2),
                   ("Currencies", 0.1)), (0.2, 0.6, 0.2), f"fomc:{day}")
            n_rep = max(1, round(0.08 * len(g.cos)))
            reporters = rng.sample(g.cos, n_rep)
            for j, co in enumerate(reporters):
                at = _ny(day, 7.0 if j % 2 == 0 else 16.0 + 5 / 60) + rng.uniform(0, 120)
                outcome = rng.random()
                # beat / in line / miss: volume either way, never a one-sided flood on a calm day
                mix = (0.05, 0.35, 0.60) if outcome < 0.65 else ((0.15, 0.65, 0.20) if outcome < 0.85 else (0.25, 0.50, 0.25))
                size = max(4, round((6 + 900 * co.weight) * max(scale, 0.25)))
                burst(at, size, 1200.0, (("Earnings", 0.5), ("Stock Movement", 0.25), ("Analyst Update", 0.15),
                                         ("Stock Commentary", 0.1)), mix, f"earnings:{co.ticker}", co=co)
        day += timedelta(days=1)
    return out


def _spike_items(g: _Gen, spikes: Sequence[Spike], seed: int) -> list[_Item]:
    out = []
    for i, sp in enumerate(spikes):
        rng = random.Random(f"{seed}:spike:{i}:{sp.ticker}:{sp.topic}:{sp.at.isoformat()}")
        t0 = sp.at.timestamp()
        times = sorted(t0 + rng.uniform(0, sp.duration_s) for _ in range(sp.size))
        if sp.ticker:
            co = g.by_ticker.get(sp.ticker) or Company(sp.ticker, f"{sp.ticker} Corp", "Technology", 0.0)
            order = list(range(len(SHOCK)))
            rng.shuffle(order)
            for n, t in enumerate(times):
                topic, tmpl = SHOCK[order[n % len(order)]]
                out.append(g.item(rng, t, "spike", f"spike:{i}:{n}", co=co, topic=topic, sentiment="negative",
                                  event=f"spike:{i}", template=tmpl))
        else:
            templates = TOPIC_SHOCK.get(sp.topic, _GENERIC_SHOCK)
            for n, t in enumerate(times):
                out.append(g.item(rng, t, "spike", f"spike:{i}:{n}", co=None, topic=sp.topic, sentiment="negative",
                                  event=f"spike:{i}", template=rng.choice(templates)))
    return out


def _iso(t: float) -> str:
    return datetime.fromtimestamp(int(t), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_stream(
    start: datetime | None = None,
    duration: timedelta = timedelta(hours=16),
    tickers: int = 200,
    rate_per_min: float = 40.0,
    spikes: Iterable[Spike] = (),
    seed: int = 0,
    *,
    events: bool = True,
    truth: bool = False,
    names: bool = False,
) -> Iterator[dict]:
    """Yield news.raw messages in event-time order (see the module docstring).

    ``names``: write messages the way real feeds do, without a ``tickers`` field: a consumer
    must link the company names (with :func:`company_aliases` as its alias file, since the
    companies are fictional) and the occasional cashtag.

    ``start`` defaults to 04:00 New York time on 2025-03-13 (``day_start()``);
    the default 16 hours cover pre-market to 20:00.  With the default rate a
    day is ~30k messages.
    """
    start = start or day_start()
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    t_start = start.timestamp()
    t_end = t_start + duration.total_seconds()
    g = _Gen(tickers, seed)
    spikes = list(spikes)
    extra = sorted(
        (_events(g, t_start, t_end, rate_per_min, seed) if events else [])
        + [x for x in _spike_items(g, spikes, seed) if t_start <= x.t < t_end],
        key=lambda x: (x.t, x.key),
    )
    ei = 0
    rng = random.Random(f"{seed}:background")
    noise = 0.0
    seq = 0
    minute = math.floor(t_start / 60) * 60
    while minute < t_end:
        ny = datetime.fromtimestamp(minute, NY)
        hour = ny.hour + ny.minute / 60
        noise = 0.92 * noise + rng.gauss(0.0, 0.08)
        lam = rate_per_min * profile(hour) * math.exp(noise)
        lo = max(minute, t_start)
        hi = min(minute + 60, t_end)
        n = _poisson(rng, lam * (hi - lo) / 60.0)
        batch = []
        for t in sorted(rng.uniform(lo, hi) for _ in range(n)):
            batch.append(g.background(rng, t, f"bg:{seq}"))
            seq += 1
        while ei < len(extra) and extra[ei].t < minute + 60:
            batch.append(extra[ei])
            ei += 1
        batch.sort(key=lambda x: x.t)
        for it in batch:
            yield _message(it, seed, t_start, truth, names)
        minute += 60


def _message(it: _Item, seed: int, t_start: float, truth: bool, names: bool = False) -> dict:
    published = _iso(it.t)
    digest = hashlib.sha1(f"{seed}|{int(t_start)}|{it.key}|{published}|{it.title}".encode()).hexdigest()
    outlet, domain = OUTLETS[it.outlet]
    msg = {
        "id": f"gen-{digest[:20]}",
        "published_at": published,
        "title": it.title,
        "source": outlet,
        "url": f"https://{domain}/news/{published[:10]}/{digest[:12]}",
        "tickers": list(it.tickers),
    }
    if names:
        del msg["tickers"]  # like a real feed: the names are in the text
    if it.summary:
        msg["summary"] = it.summary
    if truth:
        msg["truth"] = {"sentiment": it.sentiment, "topic": it.topic, "event": it.event}
    return msg


def company_aliases(tickers: int = 200, extra: Iterable[str] = ()) -> dict[str, str]:
    """``{company name: ticker}`` of the fictional universe (and of ``extra`` spike tickers outside
    it, named "<TICKER> Corp"): the alias file that lets the linker find them by name."""
    aliases = {c.name: c.ticker for c in universe(tickers)}
    known = set(aliases.values())
    aliases.update({f"{t} Corp": t for t in extra if t not in known})
    return aliases


def write_aliases(path, tickers: int = 200, extra: Iterable[str] = ()) -> int:
    """Write :func:`company_aliases` as the ``ticker,alias`` CSV of the ``aliases`` setting."""
    import csv

    rows = company_aliases(tickers, extra)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["ticker", "alias"])
        for name, ticker in sorted(rows.items()):
            w.writerow([ticker, name])
    return len(rows)


def write_jsonl(path, messages: Iterable[dict]) -> int:
    """Write messages as JSON lines (the archive format ``finsent replay`` reads); returns the count."""
    import json

    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for m in messages:
            fh.write(json.dumps(m, ensure_ascii=False))
            fh.write("\n")
            n += 1
    return n
