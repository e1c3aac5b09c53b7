"""Shared by the dashboard's integration tests: a seeded schema (the real server in a thread is
``stream.dashboard.serve.ServerThread``).

The seeded day is generated (``stream.synthetic.generate``), stored by the real writer with ground-truth
scores and passed through the real ``AlertService`` after each batch, as the worker does, so the
alerts, their NOTIFY and their top articles are the pipeline's own.  ``second_half`` holds a later
stretch with a second planted spike, stored by a test while a page or stream is open.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage import migrate
from stream.synthetic.generate import Rivalry, Spike, day_start, generate_stream, quiet_tickers, universe
from tests.support.alert_streams import article_rows, event_time, store_and_observe

START = day_start(hour=9.0)
TICKERS = quiet_tickers(k=2, seed=11)
SPIKE_1 = Spike(ticker=TICKERS[0], at=START + timedelta(hours=2, minutes=7, seconds=13), size=10)
SPIKE_2 = Spike(ticker=TICKERS[1], at=START + timedelta(hours=3, minutes=37, seconds=5), size=10)
SPLIT = START + timedelta(hours=3)


@dataclass
class Seeded:
    settings: object  # stream.base.config.Settings on the seeded schema
    first_half: list
    second_half: list
    alerts: list  # alerts.service.Alert of the first half

    @property
    def schema(self) -> str:
        return self.settings.schema

    @property
    def spike_alert(self):
        """The first alert on the first planted spike's ticker (the detector may fire others too)."""
        return next(a for a in self.alerts if a.scope_kind == "ticker" and a.scope == SPIKE_1.ticker)


def seed_schema(stack_settings, prefix: str = "t_dash") -> Seeded:
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    migrate.upgrade(stack_settings.dsn, schema=schema)
    settings = stack_settings.replace(schema=schema)
    try:
        msgs = list(generate_stream(START, timedelta(hours=4), spikes=[SPIKE_1, SPIKE_2], seed=4, truth=True))
        first = [m for m in msgs if event_time(m) < SPLIT]
        second = [m for m in msgs if event_time(m) >= SPLIT]
        alerts = store_and_observe(settings, first)
    except BaseException:
        migrate.drop_schema(stack_settings.dsn, schema)  # the fixture's teardown does not run when its setup fails
        raise
    return Seeded(settings, first, second, alerts)


# per-company sentiment: headlines bad for LOSER and good for WINNER (neutral as a whole)
LOSER, WINNER = universe()[10], universe()[11]
RIVALRY = Rivalry(loser=LOSER.ticker, winner=WINNER.ticker, at=START + timedelta(minutes=20), size=3, duration_s=1200)


def seed_rivalry(stack_settings, prefix: str = "t_dashr"):
    """A schema holding an hour of generated news with RIVALRY's headlines, scored by the generator's
    truth (per ticker for the rivalry); returns (settings, the rivalry's messages)."""
    from storage.writer import Writer

    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    migrate.upgrade(stack_settings.dsn, schema=schema)
    settings = stack_settings.replace(schema=schema)
    msgs = list(generate_stream(START, timedelta(hours=1), seed=6, truth=True, rivalries=[RIVALRY]))
    with Writer(settings.dsn, schema) as w:
        w.write_batch(article_rows(msgs))
    return settings, [m for m in msgs if m["truth"]["event"] == "rivalry:0"]


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")
