"""The batch loop (stream/core/batchloop.py) with fakes: its steps in order, depth two, model processes that
finish out of order, failures that stop everything after them."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from stream.core.batchloop import BatchLoop
from stream.core.pipeline import BatchResult, RawRecord, Scores


class Processor:
    """prepare/admit -> (score elsewhere) -> build -> store, recording the order of each step."""

    def __init__(self, fail_store_at=None):
        self.log: list[tuple[str, int]] = []
        self.fail_store_at = fail_store_at
        self.abandoned: list[int] = []
        self._lock = threading.Lock()

    def _note(self, step, res):
        with self._lock:
            self.log.append((step, res.received))

    def admit(self, records, unseen=()):
        res = BatchResult(received=int(records[0].value), items=list(records))
        self._note("admit", res)
        return res

    def prepare(self, records, unseen=()):
        res = self.admit(records, unseen)
        self.build(res, Scores([None] * len(records), [None] * len(records), "v"))
        return res

    def build(self, res, scores):
        self._note("build", res)

    def store(self, res):
        if res.received == self.fail_store_at:
            raise RuntimeError("refused")
        self._note("store", res)
        res.inserted = list(res.items)
        return res

    def abandon(self, res):
        self.abandoned.append(res.received)


def batch(k: int) -> list[RawRecord]:
    return [RawRecord(str(k).encode())]


class SlowFirst:
    """A 'model process' pool (threads here) where earlier batches take longer: they finish out of order."""

    jobs = 3
    model_version = "v"

    def __init__(self):
        self.executor = ThreadPoolExecutor(3)

    def function(self):
        def score(texts, links, tickers):
            time.sleep(0.15 if texts == ["0"] else 0.01)
            return Scores([None] * len(texts), [None] * len(texts), "v")
        return score


def texts_of(res):  # the fake items are records: their "text" is the batch number
    return res


def run(coro):
    return asyncio.run(coro)


def test_batches_commit_and_ack_in_order_even_when_their_scores_come_back_out_of_order(monkeypatch):
    monkeypatch.setattr("stream.core.batchloop.score_inputs", lambda items: ([r.value.decode() for r in items], [], []))
    proc, acks = Processor(), []
    loop = BatchLoop(proc, scorer=SlowFirst())

    async def main():
        for k in range(6):
            await loop.push(batch(k), ack=lambda r: acks.append(r.received))
        await loop.drain()

    run(main())
    loop.close()
    assert [k for step, k in proc.log if step == "store"] == list(range(6))
    assert [k for step, k in proc.log if step == "build"] == list(range(6))  # rows built in batch order
    assert acks == list(range(6))
    assert loop.depth == 4  # two, plus one batch for each model process beyond the first


def test_the_next_batch_is_prepared_while_the_previous_one_commits():
    proc = Processor()
    second_prepared = threading.Event()
    store = proc.store

    def slow_store(res):
        if res.received == 0:
            assert second_prepared.wait(5)
        return store(res)

    prepare = proc.prepare

    def noting_prepare(records, unseen=()):
        res = prepare(records, unseen)
        if res.received == 1:
            second_prepared.set()
        return res

    proc.store, proc.prepare = slow_store, noting_prepare
    loop = BatchLoop(proc)

    async def main():
        for k in range(3):
            await loop.push(batch(k))
        await loop.drain()

    run(main())
    loop.close()
    assert [k for step, k in proc.log if step == "store"] == [0, 1, 2]


def test_a_failed_commit_fails_the_loop_and_nothing_after_it_commits_or_is_acknowledged():
    proc, acks = Processor(fail_store_at=1), []
    loop = BatchLoop(proc)

    async def main():
        for k in range(5):
            await loop.push(batch(k), ack=lambda r: acks.append(r.received))
        await loop.drain()

    with pytest.raises(RuntimeError, match="refused"):
        run(main())
    loop.close()
    assert acks == [0] and [k for step, k in proc.log if step == "store"] == [0]


def test_a_failed_scoring_frees_the_batch_ids_and_fails_the_loop(monkeypatch):
    monkeypatch.setattr("stream.core.batchloop.score_inputs", lambda items: ([r.value.decode() for r in items], [], []))

    class Broken(SlowFirst):
        def function(self):
            def score(texts, links, tickers):
                raise MemoryError("model process died")
            return score

    proc = Processor()
    loop = BatchLoop(proc, scorer=Broken())

    async def main():
        await loop.push(batch(0))
        await loop.drain()

    with pytest.raises(MemoryError):
        run(main())
    loop.close()
    assert proc.abandoned == [0] and not [s for s in proc.log if s[0] == "store"]


def test_run_stops_at_once_when_a_batch_fails_without_waiting_for_the_next_batch():
    proc = Processor(fail_store_at=0)
    loop = BatchLoop(proc)
    arrived = []

    async def batches():
        yield batch(0)
        await asyncio.sleep(30)  # no more data for a long time: the failure must not wait for it
        arrived.append(1)
        yield batch(1)

    async def main():
        await asyncio.wait_for(loop.run(batches(), lambda b: (b, None)), timeout=10)

    with pytest.raises(RuntimeError, match="refused"):
        run(main())
    loop.close()
    assert arrived == []
