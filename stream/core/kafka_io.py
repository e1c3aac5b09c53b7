"""Kafka plumbing shared by the producers (ingest, replay, demo): topics and producers."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from stream.base.errors import UserError
from stream.messages.raw_message import NewsItem, json_bytes

if TYPE_CHECKING:  # pydantic: not for every command's start-up
    from stream.base.settings import Settings

log = logging.getLogger("finsent.kafka")

MAX_REQUEST_BYTES = 4 * 1024 * 1024


def ensure_topics(settings: Settings, names: Iterable[str] | None = None) -> None:
    """Create the pipeline's topics with the configured partition count (existing ones are kept)."""
    from kafka.admin import KafkaAdminClient, NewTopic  # here: kafka-python, ~0.12 s of every command's start-up
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    names = list(names or (settings.topic_raw, settings.topic_scored, settings.topic_deadletter))
    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="finsent-admin",
                                 request_timeout_ms=15000)
    except KafkaError as exc:
        raise UserError(f"Kafka at {settings.kafka_bootstrap} does not answer ({exc}); is the stack up? (finsent up)") from None
    try:
        existing = set(admin.list_topics())
        new = [NewTopic(n, num_partitions=settings.partitions, replication_factor=settings.replication,
                        topic_configs={"max.message.bytes": str(MAX_REQUEST_BYTES)})
               for n in names if n not in existing]
        if new:
            try:
                admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
            log.info("created topics %s with %d partitions", [t.name for t in new], settings.partitions)
    finally:
        admin.close()


COMPRESSION = "lz4"  # news.raw record batches (measured: bench/producer.py; the worker reads them with cramjam)


def make_producer(settings: Settings, **overrides):
    """Idempotent producer with acks=all: retries never duplicate or reorder within a partition.  Records
    are sent in batches (up to 256 KiB, 5 ms linger), lz4-compressed."""
    from kafka import KafkaProducer  # here: kafka-python, ~0.12 s of every command's start-up
    from kafka.errors import KafkaError

    config = dict(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True,
        linger_ms=5, batch_size=256 * 1024, max_request_size=MAX_REQUEST_BYTES,
        compression_type=COMPRESSION, client_id="finsent-producer",
    )
    config.update(overrides)
    try:
        return KafkaProducer(**config)
    except KafkaError as exc:
        raise UserError(f"Kafka at {settings.kafka_bootstrap} does not answer ({exc}); is the stack up? (finsent up)") from None


def encode_item(item: NewsItem) -> bytes:
    """The news.raw bytes of an item (orjson), the links found at ingest with them."""
    return json_bytes(item.to_message())


def timestamp_ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def send_item(producer, topic: str, item: NewsItem, headers: list[tuple[str, bytes]] | None = None):
    """Keyed by article id; the record timestamp is the event time (published_at)."""
    return producer.send(topic, key=item.id.encode("utf-8"), value=encode_item(item),
                         timestamp_ms=timestamp_ms(item.published_at), headers=headers or None)
