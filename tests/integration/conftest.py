"""Fixtures for integration tests against the real local stack.

* ``stack`` (session): brings the embedded Kafka + PostgreSQL up once, reusing a
  stack that is already running (or the servers named by ``FINSENT_KAFKA`` /
  ``FINSENT_DATABASE_URL``).  It is left running for the next session; ``make
  test`` does not stop a stack it did not start.
* ``schema``: a fresh PostgreSQL schema with the migrations applied, dropped
  afterwards.
* ``topics``: unique Kafka topic names for this test, deleted afterwards.
* ``settings``: :class:`stream.config.Settings` pointing at all of the above
  (own schema, own topics, own consumer group).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg2
import pytest

from deploy import localstack
from stream.config import Settings, load_settings


@dataclass(frozen=True)
class Stack:
    settings: Settings

    @property
    def kafka(self) -> str:
        return self.settings.kafka_bootstrap

    @property
    def dsn(self) -> str:
        return self.settings.dsn


@dataclass(frozen=True)
class Topics:
    raw: str
    scored: str
    deadletter: str


@pytest.fixture(scope="session")
def stack():
    settings = load_settings()
    st = localstack.status(settings)
    already_up = st["kafka_ok"] and st["postgres_ok"]
    if not already_up:  # a healthy stack (ours or one started elsewhere) is reused as it is
        localstack.up(settings, quiet=True)
    yield Stack(settings)
    if not already_up:  # leave a stack we found running as it was; stop one we started
        localstack.down(settings, quiet=True)


@pytest.fixture
def schema(stack: Stack):
    name = f"t_{uuid.uuid4().hex[:10]}"
    from storage import migrate

    migrate.upgrade(stack.dsn, schema=name)
    yield name
    conn = psycopg2.connect(stack.dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        conn.close()


@pytest.fixture
def topics(stack: Stack):
    from kafka.admin import KafkaAdminClient

    tag = uuid.uuid4().hex[:10]
    t = Topics(raw=f"t{tag}.news.raw", scored=f"t{tag}.news.scored", deadletter=f"t{tag}.news.deadletter")
    yield t
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka, client_id="finsent-tests")
    try:
        existing = set(admin.list_topics())
        doomed = [n for n in (t.raw, t.scored, t.deadletter) if n in existing]
        doomed += [n for n in existing if n.startswith(f"t{tag}")  and n not in doomed]
        if doomed:
            admin.delete_topics(doomed)
    finally:
        admin.close()


@pytest.fixture
def settings(stack: Stack, schema: str, topics: Topics) -> Settings:
    return stack.settings.replace(
        schema=schema,
        topic_raw=topics.raw,
        topic_scored=topics.scored,
        topic_deadletter=topics.deadletter,
        app_id=f"finsent-{schema}",
    )
