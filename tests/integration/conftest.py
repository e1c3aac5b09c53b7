"""Fixtures for integration tests against the real local stack.

* ``stack`` (session): brings the embedded Kafka + PostgreSQL up once, reusing a
  stack that is already running (or the servers named by ``FINSENT_KAFKA`` /
  ``FINSENT_DATABASE_URL``).  A stack found running is left as it was; one this
  session started is stopped when the session ends.  If the stack cannot start,
  the tests that need it are deselected, the reason is printed as one ``ERROR``
  line and the session fails.
* ``schema``: a fresh PostgreSQL schema with the migrations applied, dropped
  afterwards.
* ``topics``: unique Kafka topic names for this test, deleted afterwards.
* ``pg``: the stack's settings on the test's own schema (database-only tests).
* ``settings``: :class:`stream.base.config.Settings` pointing at all of the above
  (own schema, own topics, own consumer group).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from kafka.admin import KafkaAdminClient

from deploy import localstack
from storage import migrate
from stream.base.config import Settings, load_settings


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


# The local stack is started once, before the first test, by whichever of these runs first.  When
# it cannot start, the tests that need it are deselected, the reason is printed ONCE as one
# ERROR line and the session fails -- instead of the same long error for each of those tests.
_STACK: dict = {}


def stack_failure_line(exc: BaseException) -> str:
    """One line: why the local stack cannot start (initdb/pg_ctl output folded)."""
    text = " | ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip())
    return f"local stack cannot start: {type(exc).__name__}: {text}"[:1000]


def _start_stack():
    """(settings, already_up), or the one-line reason it cannot start."""
    if "result" not in _STACK:
        try:
            settings = load_settings()
            st = localstack.status(settings)
            already_up = st["kafka_ok"] and st["postgres_ok"]
            if not already_up:  # a healthy stack (ours or one started elsewhere) is reused as it is
                localstack.up(settings, quiet=True)
            _STACK["result"] = (settings, already_up)
        except Exception as exc:  # noqa: BLE001 - any reason: said once, in one line
            _STACK["result"] = stack_failure_line(exc)
    return _STACK["result"]


def pytest_collection_modifyitems(session, config, items):
    if config.option.collectonly:
        return
    needing = [it for it in items if "stack" in getattr(it, "fixturenames", ())]
    if needing and isinstance(_start_stack(), str):
        config.hook.pytest_deselected(items=needing)
        doomed = set(map(id, needing))
        items[:] = [it for it in items if id(it) not in doomed]


def pytest_terminal_summary(terminalreporter):
    if isinstance(_STACK.get("result"), str):
        terminalreporter.write_line(f"ERROR {_STACK['result']}", red=True, bold=True)


def pytest_sessionfinish(session, exitstatus):
    if isinstance(_STACK.get("result"), str) and session.exitstatus in (0, 5):  # 5: nothing left to run
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def stack():
    result = _start_stack()
    if isinstance(result, str):
        pytest.fail(result, pytrace=False)
    settings, already_up = result
    yield Stack(settings)
    if not already_up:  # leave a stack we found running as it was; stop one we started
        localstack.down(settings, quiet=True)


@pytest.fixture
def schema(stack: Stack):
    name = f"t_{uuid.uuid4().hex[:10]}"
    migrate.upgrade(stack.dsn, schema=name)
    yield name
    migrate.drop_schema(stack.dsn, name)


@pytest.fixture
def topics(stack: Stack):
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
def pg(stack: Stack, schema: str) -> Settings:
    """The stack's settings on the test's own schema (database-only tests: no topics of their own)."""
    return stack.settings.replace(schema=schema)


@pytest.fixture
def settings(stack: Stack, schema: str, topics: Topics) -> Settings:
    return stack.settings.replace(
        schema=schema,
        topic_raw=topics.raw,
        topic_scored=topics.scored,
        topic_deadletter=topics.deadletter,
        app_id=f"finsent-{schema}",
    )
