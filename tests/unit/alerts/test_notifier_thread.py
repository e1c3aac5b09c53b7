"""Notifier.start / stop: the one way to run the notifier in a thread (the worker's and the benchmarks')."""

from __future__ import annotations

import logging
import time

from alerts.notifier import Notifier
from stream.base.config import Settings


def test_stop_ends_a_notifier_waiting_out_its_database_backoff(caplog):
    # no database on port 1: every round fails and the loop waits 1, 2, 4 ... s before the next
    settings = Settings(database_url="postgresql://finsent:secret-pw@127.0.0.1:1/finsent")
    n = Notifier(settings, targets=[])
    caplog.set_level(logging.WARNING, logger="finsent.alerts.notifier")
    thread, stop = n.start()
    deadline = time.monotonic() + 20
    while not any("retrying in" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert thread.is_alive() and any("retrying in 1.0s" in r.getMessage() for r in caplog.records)
    t0 = time.monotonic()
    n.stop(timeout=10)
    assert not thread.is_alive() and stop.is_set()
    assert time.monotonic() - t0 < 5  # the stop event cut the wait short
    n.stop()  # twice is fine
    assert all("secret-pw" not in r.getMessage() for r in caplog.records)
