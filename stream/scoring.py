"""Model processes for ``finsent replay --jobs N``: N copies of the engine, one per process.

The batch loop (``stream.core.batchloop``) hands each batch's texts, links and tickers to one of them and
builds and stores the rows in batch order, through one writer: since a text's scores do not depend on
its batch (README, "Guarantees"), trends and alerts are those of ``--jobs 1``.  Each process runs the
model with ``cores // N`` threads (at least one).  Processes are spawned (not forked: the parent holds
threads and a database connection) and load the checkpoint once.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, wait
from typing import Any

from model.cpu import usable_cores
from stream.core.pipeline import Scores, score_items

log = logging.getLogger("finsent.scoring")

_engine: Any = None  # the model of this process (in a model process only)


def default_jobs(device: str | None, cores: int | None = None) -> int:
    """Model processes ``finsent replay`` runs by default: one per core on the CPU (measured, README
    "Benchmarks": two single-threaded processes beat one with two threads), one on a GPU."""
    from model.engine import device_name

    if device_name(device) != "cpu":
        return 1
    return cores or usable_cores()


def _load(model: str | None, device: str | None, threads: int) -> None:
    global _engine
    from model.engine import load_engine  # here: in the model process

    _engine = load_engine(model, device=device, threads=threads)


def _version() -> str:
    return _engine.model_version


def _score(texts: list[str], links: list[Any], tickers: list[Any]) -> Scores:
    return score_items(_engine, texts, links, tickers)


class ProcessScorer:
    """``jobs`` model processes behind one executor (:class:`stream.core.batchloop.Scorer`)."""

    def __init__(self, model: str | None, device: str | None, jobs: int, threads: int | None = None) -> None:
        self.jobs = jobs
        self.threads = threads or max(1, usable_cores() // jobs)
        self.executor = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_load, initargs=(model, device, self.threads))
        started = [self.executor.submit(_version) for _ in range(jobs)]  # every process starts and loads now
        wait(started)
        self.model_version = started[0].result()
        log.info("model %s in %d processes, %d thread(s) each", self.model_version, jobs, self.threads)

    def function(self) -> Callable[[list[str], list[Any], list[Any]], Scores]:
        return _score

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


class Elsewhere:
    """The engine a batch processor holds while the model runs in model processes: their version only."""

    def __init__(self, scorer: ProcessScorer) -> None:
        self.model_version = scorer.model_version
        self.device = f"{scorer.jobs} model processes ({scorer.threads} thread(s) each)"

    def predict(self, texts: Any) -> list:
        raise RuntimeError("the model runs in the model processes (stream.scoring)")
