"""What news.raw still retains, read back from a time on: ``finsent replay --from-kafka --since T``.

A consumer of its own (group ``<app_id>-replay-<unix time>``, manual assignment) seeks every
partition to the first offset at or after T (record timestamps are event times) and reads up to
the end offsets it saw at the start.  After each poll a checkpoint commits the positions reached,
once the sink has stored the records before them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from functools import partial

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from stream.base.config import Settings
from stream.base.errors import UserError
from stream.core.ingest import Checkpoint, Record
from stream.core.pipeline import RawRecord


class KafkaReplaySource:
    name = "replay from kafka"
    progress = True

    def __init__(self, settings: Settings, since: datetime, max_records: int) -> None:
        self.since = since
        self.max_records = max_records
        self.group = f"{settings.app_id}-replay-{int(time.time())}"
        self.consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=self.group,
                                      enable_auto_commit=False, max_partition_fetch_bytes=4 * 1024 * 1024)
        consumer = self.consumer
        topic = settings.topic_raw
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or set())]
        if not tps:
            consumer.close()
            raise UserError(f"topic {topic} does not exist")
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        starts = consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in tps})
        self.remaining: dict[TopicPartition, int] = {}  # partition -> end offset still to reach
        for tp in tps:
            off = starts.get(tp)
            if off is None:
                consumer.seek(tp, ends[tp])
            else:
                consumer.seek(tp, off.offset)
                if ends[tp] > off.offset:
                    self.remaining[tp] = ends[tp]
        self.total = sum(ends[tp] - consumer.position(tp) for tp in self.remaining)

    def __iter__(self) -> Iterator[Record | Checkpoint]:
        remaining = self.remaining
        while remaining:
            polled = self.consumer.poll(timeout_ms=1000, max_records=self.max_records)
            n = 0
            for tp, recs in polled.items():
                for r in recs:
                    if tp in remaining and r.offset < remaining[tp]:
                        n += 1
                        yield Record(raw=RawRecord(value=r.value, key=r.key, topic=r.topic, partition=r.partition,
                                                   offset=r.offset, timestamp_ms=r.timestamp))
                if tp in remaining and self.consumer.position(tp) >= remaining[tp]:
                    del remaining[tp]
            if n:  # the positions reached: committed once the records before are stored
                offsets = {tp: OffsetAndMetadata(self.consumer.position(tp), "", -1) for tp in polled}
                yield Checkpoint(partial(self._commit, offsets))

    def _commit(self, offsets: dict) -> None:
        self.consumer.commit(offsets)

    def close(self) -> None:
        self.consumer.close()
