"""Fixtures shared by the unit tests: in-memory Redis (fakeredis, Lua included), a task store on
it, a broker apart from it, and a worker context wired to both, without a network or a worker."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import fakeredis
import pytest
import structlog

from parjanya import results
from parjanya.app import create_app
from parjanya.broker.poison import RawDeadLetters
from parjanya.config import ParjanyaConfig, Settings
from parjanya.observe.logs import configure_logging
from parjanya.resilience.retry import set_testing
from parjanya.schema import HopMessage, TaskRequest, TaskStatus
from parjanya.store import Claim, TaskStore
from parjanya.worker.context import WorkerContext, build_context
from tests.unit.store_calls import claim_hop


@pytest.fixture
def no_sleep() -> Iterator[None]:
    """Retries and backoffs without their waits (stamina-style `set_testing`)."""
    with set_testing():
        yield


@pytest.fixture
def fake_server() -> fakeredis.FakeServer:
    """One in-memory Redis server; clients made on it share its data."""
    return fakeredis.FakeServer()


@pytest.fixture
def store(fake_server: fakeredis.FakeServer) -> TaskStore:
    return TaskStore(fakeredis.FakeRedis(server=fake_server))


@pytest.fixture
def broker() -> fakeredis.FakeRedis:
    """The broker's Redis, apart from the store's (as with `PARJANYA_RESULT_URL` set)."""
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


@pytest.fixture
def config() -> ParjanyaConfig:
    return ParjanyaConfig()


@pytest.fixture
def worker_ctx(
    store: TaskStore, broker: fakeredis.FakeRedis, config: ParjanyaConfig
) -> Iterator[WorkerContext]:
    """A worker context whose store and broker are the fakes above (nothing else is built)."""
    settings = Settings(broker_url="redis://broker.invalid/0", result_url="redis://store.invalid/1")
    ctx = build_context(settings, config, create_app(settings, config))
    ctx.store = store  # cached_property: assigning replaces what it would build
    ctx.broker = broker
    ctx.dead_letters = RawDeadLetters(store, config.reliability.dead_letter_raw_bytes)
    yield ctx
    if "leases" in ctx.__dict__:
        ctx.leases.stop()
    if "loop" in ctx.__dict__:  # the context owns its event loop thread
        ctx.loop.stop()


def submit(store: TaskStore, prompt: str = "Rename tmp to total.") -> str:
    """Record a task as a producer would (queued on its intake hop) and return its id."""
    return store.create(TaskRequest(prompt=prompt), requeue_after_s=600).task_id


def queued_on_low(store: TaskStore, prompt: str = "Rename tmp to total.") -> str:
    """A task classified and queued on its first tier hop (hop 1, low), as the classifier leaves it."""
    task_id = submit(store, prompt)
    intake = claim_hop(store, task_id)
    assert intake.doc is not None
    results.close_hop(intake.doc, 0)
    results.open_hop(intake.doc, 1, "low")
    assert store.transition(intake.doc, token=intake.token, hop=1, stage="low", deadline_s=600)
    return task_id


def held_on_low(store: TaskStore, prompt: str = "Rename tmp to total.") -> tuple[HopMessage, Claim]:
    """A task classified to `low` and claimed there: a tier hop in flight."""
    task_id = queued_on_low(store, prompt)
    message = HopMessage(task_id=task_id, hop=1, stage="low")
    claim = store.claim(message, holding=TaskStatus.running, lease_ttl_s=30, max_deliveries=3)
    assert claim.granted and claim.doc is not None
    return message, claim


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    """The process's logs as JSON lines into a buffer; logging restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    configure_logging("json", stream=buffer)
    yield buffer
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
