"""storage.db's one transaction-with-retry helper and lazy connection, over fake connections."""

from __future__ import annotations

import threading

import psycopg2
import psycopg2.errors
import pytest

from storage.db import LazyConnection, RetryPolicy, retry_call, transaction


class FakeConn:
    def __init__(self, log: list, fail: list):
        self.log, self.fail, self.closed = log, fail, 0

    def commit(self):
        self.log.append("commit")

    def rollback(self):
        self.log.append("rollback")

    def close(self):
        self.closed = 1
        self.log.append("close")


class Factory:
    """Opens FakeConns; the first ``refuse`` opens fail with a connection error."""

    def __init__(self, refuse: int = 0):
        self.refuse, self.opened, self.log = refuse, 0, []

    def __call__(self):
        if self.refuse:
            self.refuse -= 1
            self.log.append("refused")
            raise psycopg2.OperationalError("could not connect to server: Connection refused")
        self.opened += 1
        self.log.append("open")
        return FakeConn(self.log, [])


def failing_body(errors: list):
    """A body that raises the given errors in turn, then returns 'ok'."""

    def body(conn):
        conn.log.append("body")
        if errors:
            exc = errors.pop(0)
            if isinstance(exc, psycopg2.OperationalError) and exc.pgcode is None:
                conn.closed = 1  # the server went away
            raise exc
        return "ok"

    return body


class Deadlock(psycopg2.errors.DeadlockDetected):
    pgcode = "40P01"  # as the server sets it


class NoTable(psycopg2.errors.UndefinedTable):
    pgcode = "42P01"


def lost():
    return psycopg2.OperationalError("server closed the connection unexpectedly")


def test_transient_failures_are_retried_on_a_fresh_connection_with_growing_waits():
    f = Factory()
    db = LazyConnection(f)
    waits, retries = [], []
    done = transaction(db, failing_body([lost(), lost(), lost()]), policy=RetryPolicy(initial_s=0.1, max_s=0.3),
                       on_retry=lambda e, n, d: retries.append((n, d)), sleep=waits.append)
    assert (done.value, done.attempts) == ("ok", 4)
    assert waits == [0.1, 0.2, 0.3]  # doubled, capped at max_s
    assert retries == [(1, 0.1), (2, 0.2), (3, 0.3)]
    assert f.opened == 4  # each lost connection dropped, a new one opened
    assert f.log[-2:] == ["body", "commit"]


def test_refused_connections_are_retried_too():
    f = Factory(refuse=2)
    done = transaction(LazyConnection(f), failing_body([]), policy=RetryPolicy(initial_s=0.01), sleep=lambda s: None)
    assert (done.value, done.attempts, f.opened) == ("ok", 3, 1)


def test_deadlock_rolls_back_and_keeps_the_connection():
    f = Factory()
    deadlock = Deadlock("deadlock detected")
    done = transaction(LazyConnection(f), failing_body([deadlock]), policy=RetryPolicy(), sleep=lambda s: None)
    assert done.attempts == 2 and f.opened == 1
    assert f.log == ["open", "body", "rollback", "body", "commit"]


def test_a_permanent_error_is_raised_at_once_after_a_rollback():
    f = Factory()
    waits = []
    with pytest.raises(psycopg2.errors.UndefinedTable):
        transaction(LazyConnection(f), failing_body([NoTable("no table"), lost()]),
                    policy=RetryPolicy(), sleep=waits.append)
    assert waits == [] and f.log == ["open", "body", "rollback"]


def test_attempt_limit_raises_the_last_error_or_what_give_up_says():
    f = Factory()
    with pytest.raises(psycopg2.OperationalError, match="closed"):
        transaction(LazyConnection(f), failing_body([lost()] * 9), policy=RetryPolicy(attempts=3), sleep=lambda s: None)
    assert f.log.count("body") == 3

    seen = []

    def give_up(exc, attempts, elapsed):
        seen.append((type(exc), attempts))
        raise RuntimeError("gave up")

    with pytest.raises(RuntimeError, match="gave up"):
        transaction(LazyConnection(Factory()), failing_body([lost()] * 9), policy=RetryPolicy(attempts=5),
                    give_up=give_up, sleep=lambda s: None)
    assert seen == [(psycopg2.OperationalError, 5)]


def test_deadline_gives_up_before_a_wait_that_would_pass_it():
    f = Factory(refuse=10**6)
    waits = []

    def give_up(exc, attempts, elapsed):
        return ("unavailable", attempts)

    done = transaction(LazyConnection(f), failing_body([]), policy=RetryPolicy(deadline_s=0.25, initial_s=0.1, max_s=1),
                       give_up=give_up, sleep=waits.append)
    # waits 0.1 (0.1 + 0.0 < 0.25), 0.2 would end at about 0.2: still under; 0.4 is past the deadline
    assert done.value == ("unavailable", 3) and waits == [0.1, 0.2]


def test_retry_now_retries_without_waiting_or_growing_the_backoff():
    f = Factory()
    class Check(psycopg2.errors.CheckViolation):
        pgcode = "23514"

    check = Check("no partition of relation found for row")
    waits = []
    done = transaction(LazyConnection(f), failing_body([check, lost()]), policy=RetryPolicy(initial_s=0.5),
                       retry_now=lambda e: isinstance(e, psycopg2.errors.CheckViolation), sleep=waits.append)
    assert done.attempts == 3 and waits == [0.5]


def test_retry_call_stops_quietly_when_the_stop_event_is_set():
    stop = threading.Event()
    calls = []

    def round_():
        calls.append(1)
        if len(calls) == 2:
            stop.set()
        raise psycopg2.OperationalError("down")

    done = retry_call(round_, policy=RetryPolicy(initial_s=1.0, max_s=30.0), retryable=lambda e: True,
                      give_up=lambda e, n, t: None, stop_event=stop, sleep=lambda s: None)
    assert done.value is None and len(calls) == 2


def test_lazy_connection_reopens_after_drop_or_server_close():
    f = Factory()
    db = LazyConnection(f)
    assert not db.is_open
    c1 = db.get()
    assert db.get() is c1 and db.is_open
    c1.closed = 1  # the server closed it
    c2 = db.get()
    assert c2 is not c1 and f.opened == 2
    db.drop()
    assert not db.is_open and c2.closed
    db.drop()  # twice is fine
    assert db.get() is not c2 and f.opened == 3
