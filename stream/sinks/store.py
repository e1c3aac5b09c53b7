"""Score and store in this process, with the worker's own batch step: ``finsent replay --schema``
and ``--from-kafka``.  Records are gathered into batches of ``batch_size`` (and at every
checkpoint) and handed to :class:`stream.pipeline.BatchProcessor`, which validates, scores,
writes them in one transaction and runs the alert detector, exactly as the worker does."""

from __future__ import annotations

from stream.ingest import Record
from stream.kafka_io import encode_item
from stream.pipeline import REPLAY_HEADER, BatchProcessor, RawRecord


class StoreSink:
    def __init__(self, processor: BatchProcessor, schema: str, *, notify: bool, batch_size: int) -> None:
        self.processor = processor
        self.schema = schema
        self.header = ((REPLAY_HEADER, b"notify" if notify else b"quiet"),)
        self.batch_size = batch_size
        self.batch: list[RawRecord] = []
        self.stored = self.skipped = self.dead = 0

    def write(self, record: Record) -> None:
        raw = record.raw
        if record.item is not None:
            self.batch.append(RawRecord(value=encode_item(record.item), headers=self.header))
        else:
            self.batch.append(RawRecord(value=raw.value, key=raw.key, topic=raw.topic, partition=raw.partition,
                                        offset=raw.offset, timestamp_ms=raw.timestamp_ms, headers=self.header))
        if len(self.batch) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        result = self.processor.process(self.batch)  # one transaction: committed when this returns
        self.stored += len(result.inserted)
        self.skipped += result.skipped
        self.dead += len(result.dead)
        self.batch = []

    def close(self) -> None:
        pass

    def summary(self) -> str:
        return f"stored {self.stored} in schema {self.schema}, already there {self.skipped}, dead-lettered {self.dead}"
