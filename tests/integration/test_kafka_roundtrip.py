"""Real broker round-trips with kafka-python (the client finsent's producers use)."""

import json
import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic


def _create(stack, name, partitions=3):
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka)
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()


def _producer(stack):
    return KafkaProducer(bootstrap_servers=stack.kafka, acks="all", enable_idempotence=True)


def _send(producer, topic, key, value):
    return producer.send(topic, key=key.encode(), value=json.dumps(value).encode())


def test_produce_consume_roundtrip_idempotent_acks_all(stack, topics):
    _create(stack, topics.raw)
    producer = _producer(stack)
    sent = {f"id-{i}": {"n": i, "title": f"headline {i}"} for i in range(200)}
    futures = [_send(producer, topics.raw, k, v) for k, v in sent.items()]
    producer.flush()
    metas = [f.get(timeout=10) for f in futures]
    producer.close()
    assert {m.topic for m in metas} == {topics.raw}
    assert len({m.partition for m in metas}) > 1  # keys spread over partitions

    consumer = KafkaConsumer(
        topics.raw, bootstrap_servers=stack.kafka, auto_offset_reset="earliest",
        group_id=f"g-{uuid.uuid4().hex[:8]}", consumer_timeout_ms=5000,
    )
    got = {r.key.decode(): json.loads(r.value) for r in consumer}
    consumer.close()
    assert got == sent


def test_committed_offsets_survive_consumer_restart(stack, topics):
    _create(stack, topics.raw, partitions=1)
    producer = _producer(stack)
    for i in range(10):
        _send(producer, topics.raw, str(i), {"i": i})
    producer.flush()
    producer.close()
    group = f"g-{uuid.uuid4().hex[:8]}"

    def consumer():
        return KafkaConsumer(
            bootstrap_servers=stack.kafka, group_id=group, auto_offset_reset="earliest",
            enable_auto_commit=False, consumer_timeout_ms=5000,
        )

    c1 = consumer()
    c1.subscribe([topics.raw])
    first = []
    for rec in c1:
        first.append(json.loads(rec.value)["i"])
        if len(first) == 4:
            c1.commit()
            break
    c1.close(autocommit=False)
    assert first == [0, 1, 2, 3]

    c2 = consumer()
    c2.subscribe([topics.raw])
    rest = [json.loads(r.value)["i"] for r in c2]
    assert rest == [4, 5, 6, 7, 8, 9]
    assert c2.committed(TopicPartition(topics.raw, 0)) == 4
    c2.close(autocommit=False)
