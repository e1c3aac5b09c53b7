"""news.raw through an idempotent producer (``stream.core.kafka_io``): the sink of ingest and replay.

A validated article is sent keyed by its id with the record timestamp set to ``published_at``;
raw bytes (an invalid row) go unkeyed, so the worker dead-letters them with their reason.  A
record the broker refuses stops the run (``UserError``) before the next checkpoint commits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stream.base.errors import UserError
from stream.core.ingest import Record
from stream.core.kafka_io import ensure_topics, make_producer, send_item

if TYPE_CHECKING:  # pydantic: not for every command's start-up
    from stream.base.settings import Settings


class KafkaSink:
    def __init__(self, settings: Settings, headers: list[tuple[str, bytes]] | None = None, *,
                 producer=None) -> None:
        self.topic = settings.topic_raw
        self.headers = headers
        if producer is None:
            ensure_topics(settings)
            producer = make_producer(settings)
        self.producer = producer
        self.sent = 0
        self.failures: list[Exception] = []

    def write(self, record: Record) -> None:
        if record.item is not None:
            future = send_item(self.producer, self.topic, record.item, self.headers)
        else:
            raw = record.raw
            future = self.producer.send(self.topic, key=raw.key if raw else None,
                                        value=raw.value if raw else b"", headers=self.headers or None)
        future.add_errback(self.failures.append)
        self.sent += 1
        self._raise_failure()

    def flush(self) -> None:
        self.producer.flush()  # every record acknowledged by the broker (or failed)
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self.failures:
            raise UserError(f"Kafka refused a record: {self.failures[0]}")

    def close(self) -> None:
        self.producer.close()

    def summary(self) -> str:
        return f"sent {self.sent} to {self.topic}"
