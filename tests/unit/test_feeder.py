"""Batch feeders on fakeredis: they pop the broker (not the store), in batches bounded by room."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import fakeredis

from parjanya.queues import INTAKE_QUEUE, INTAKE_TASK
from parjanya.schema import TaskStatus
from parjanya.store import TaskStore
from parjanya.worker.admission import Admission
from parjanya.worker.context import WorkerContext
from parjanya.worker.feeder import QueueFeeder

from .conftest import submit
from .test_admission import HOSTILE, Started, message_for


def feeder(ctx: WorkerContext, start: Started, **kwargs: object) -> QueueFeeder:
    admission = Admission(
        ctx, INTAKE_QUEUE, task_name=INTAKE_TASK, holding=TaskStatus.classifying, start=start
    )
    return QueueFeeder(ctx.broker, admission, **kwargs)  # type: ignore[arg-type]


def test_a_feeder_pops_the_broker_even_when_the_store_is_apart(
    worker_ctx: WorkerContext, store: TaskStore, broker: fakeredis.FakeRedis
) -> None:
    ids = [submit(store) for _ in range(5)]
    for task_id in ids:
        broker.lpush(INTAKE_QUEUE, message_for(worker_ctx, task_id))
    start = Started()
    assert feeder(worker_ctx, start, batch=3).step() == 3  # oldest first, a batch at a time
    assert feeder(worker_ctx, start, batch=3).step() == 2
    assert [m.task_id for m, _ in start.hops] == ids
    assert not store.redis.exists(INTAKE_QUEUE)  # nothing was looked for in the store


def test_a_feeder_pops_no_more_than_there_is_room_for(
    worker_ctx: WorkerContext, store: TaskStore, broker: fakeredis.FakeRedis
) -> None:
    for _ in range(5):
        broker.lpush(INTAKE_QUEUE, message_for(worker_ctx, submit(store)))
    room = [2]
    fed = feeder(worker_ctx, Started(), batch=64, room=lambda batch: min(batch, room[0]))
    assert fed.step() == 2 and broker.llen(INTAKE_QUEUE) == 3
    room[0] = 0
    assert fed.step() == 0 and broker.llen(INTAKE_QUEUE) == 3


def test_pop_and_claim_happen_inside_the_admitting_block(
    worker_ctx: WorkerContext, store: TaskStore, broker: fakeredis.FakeRedis
) -> None:
    broker.lpush(INTAKE_QUEUE, message_for(worker_ctx, submit(store)))
    inside: list[bool] = []
    entered = [False]

    @contextmanager
    def admitting() -> Iterator[None]:
        entered[0] = True
        yield
        entered[0] = False

    start = Started()
    original = start.__call__

    def recording(*args: object) -> None:
        inside.append(entered[0])
        original(*args)  # type: ignore[arg-type]

    fed = feeder(worker_ctx, recording, admitting=admitting)  # type: ignore[arg-type]
    assert fed.step() == 1 and inside == [True]


def test_the_feeder_loop_outlives_hostile_messages_and_a_broker_error(
    worker_ctx: WorkerContext, store: TaskStore, broker: fakeredis.FakeRedis
) -> None:
    for raw in HOSTILE:
        broker.lpush(INTAKE_QUEUE, raw)
    good = submit(store)
    broker.lpush(INTAKE_QUEUE, message_for(worker_ctx, good))
    start = Started()
    failures = [1]
    fed = feeder(worker_ctx, start, batch=2)
    real_pop = fed.popper.pop

    def flaky_pop(room: int, *, idle_block_s: int = 1) -> list[bytes]:
        if failures[0]:
            failures[0] -= 1
            raise ConnectionError("broker blip")
        return real_pop(room, idle_block_s=idle_block_s)

    fed.popper.pop = flaky_pop  # type: ignore[method-assign]
    fed.start()
    deadline = time.monotonic() + 10
    while not start.hops:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert fed.thread.is_alive() and time.monotonic() - fed.last_poll < 2
    fed.stop()
    assert not fed.thread.is_alive() and fed.stopping()
    assert failures == [0] and [m.task_id for m, _ in start.hops] == [good]
    assert store.redis.llen("parjanya.dlq.intake") == len(HOSTILE)
