"""The one place that builds a worker's parts from the settings.

:func:`build_parts` is used by ``finsent worker`` (and so by the demo's and the tests' worker
processes), by ``finsent replay --schema`` / ``--from-kafka`` (the same batch step in-process)
and by the benchmarks' worker (``bench/worker.py``, with the null model).  :func:`build_linker`
is the ticker linker of the settings, for the worker and for ingest/replay alike.
"""

from __future__ import annotations

import logging

from alerts.notifier import Notifier
from alerts.service import AlertService
from model.engine import load_engine
from storage.migrate import upgrade_to_settings
from storage.novelty import warm_start
from storage.writer import Writer
from stream.app import WorkerParts
from stream.base.config import Settings, refuse_default_secrets
from stream.core.pipeline import BatchProcessor
from stream.linking import Linker, linker_for
from stream.messages.novelty import StoryIndex
from stream.metrics import WorkerMetrics

log = logging.getLogger("finsent")


def build_linker(settings: Settings) -> Linker:
    """The shipped ticker linker with the user's aliases, restricted to the watchlist."""
    return linker_for(settings.aliases, settings.watchlist)


def build_parts(settings: Settings, *, alerts: bool = True, with_notifier: bool = True, engine=None) -> WorkerParts:
    """Load the model once, open the writer, prepare alerting: everything a worker holds.

    ``engine``: an already built engine (the benchmark's null model) instead of the checkpoint's."""
    refuse_default_secrets(settings)  # a database off the loopback with a shipped password: refuse
    upgrade_to_settings(settings)
    if engine is None:
        engine = load_engine(settings.model, device=settings.device)
    log.info("model %s loaded on %s", engine.model_version, engine.device)
    writer = Writer(settings.dsn, schema=settings.schema)
    service = notifier = None
    if alerts:
        service = AlertService(settings)
        if with_notifier:
            notifier = Notifier(settings)
    novelty = StoryIndex(settings.alerts.story_horizon_s, settings.alerts.story_threshold)
    warm_start(novelty, settings)
    processor = BatchProcessor(engine, writer, extractor=build_linker(settings), alerts=service, novelty=novelty)
    return WorkerParts(processor=processor, metrics=WorkerMetrics(), notifier=notifier)
