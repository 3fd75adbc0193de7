"""The store's asyncio half on fakeredis (Lua included): creates batched in one turn of the loop
write the same tasks as `TaskStore.create`, and a wait is woken by the task's end."""

from __future__ import annotations

import asyncio

import fakeredis
import pytest

from parjanya.schema import TaskRequest, TaskStatus
from parjanya.store import IdempotencyConflict, TaskStore
from parjanya.store.aio import AsyncTaskStore
from tests.unit.store_calls import claim_hop


def _stores() -> tuple[TaskStore, AsyncTaskStore]:
    server = fakeredis.FakeServer()
    return (
        TaskStore(fakeredis.FakeRedis(server=server)),
        AsyncTaskStore(fakeredis.FakeAsyncRedis(server=server)),
    )


def test_concurrent_creates_are_written_as_the_sync_store_writes_them() -> None:
    sync, aio = _stores()

    async def scenario() -> list[str]:
        created = await asyncio.gather(
            *(aio.create(TaskRequest(prompt=f"task {i}"), requeue_after_s=600) for i in range(5))
        )
        assert all(c.created for c in created)
        return [c.task_id for c in created]

    ids = asyncio.run(scenario())
    assert len(set(ids)) == 5
    for i, task_id in enumerate(ids):
        request = sync.get_request(task_id)
        assert request is not None and request.prompt == f"task {i}"
        result = sync.get(task_id)
        assert result is not None and result.status == TaskStatus.queued


def test_an_idempotency_conflict_in_a_batch_fails_only_its_own_create() -> None:
    _, aio = _stores()

    async def scenario() -> None:
        first = await aio.create(TaskRequest(prompt="a", idempotency_key="k"), requeue_after_s=600)
        same, other, fresh = await asyncio.gather(
            aio.create(TaskRequest(prompt="a", idempotency_key="k"), requeue_after_s=600),
            aio.create(TaskRequest(prompt="b", idempotency_key="k"), requeue_after_s=600),
            aio.create(TaskRequest(prompt="c"), requeue_after_s=600),
            return_exceptions=True,
        )
        assert not isinstance(same, BaseException)
        assert same.task_id == first.task_id and not same.created
        assert isinstance(other, IdempotencyConflict)
        assert not isinstance(fresh, BaseException) and fresh.created

    asyncio.run(scenario())


def test_a_wait_is_woken_by_the_end_of_the_task() -> None:
    sync, aio = _stores()
    task_id = sync.create(TaskRequest(prompt="hi"), requeue_after_s=600).task_id

    async def scenario() -> None:
        assert not await aio.wait_done(task_id, 0.05)
        waiter = asyncio.create_task(aio.wait_done(task_id, 10))
        await asyncio.sleep(0.05)
        claim = claim_hop(sync, task_id)
        assert claim.doc is not None
        claim.doc.status = TaskStatus.succeeded
        assert sync.transition(claim.doc, token=claim.token, hop=0, stage="intake", ttl_s=60)
        assert await asyncio.wait_for(waiter, 5)
        result = await aio.get(task_id)
        assert result is not None and result.status == TaskStatus.succeeded
        assert await aio.get("missing") is None

    asyncio.run(scenario())


@pytest.mark.parametrize("n", [1, 3])
def test_a_redis_error_reaches_every_create_of_the_batch(n: int) -> None:
    aio = AsyncTaskStore(fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer()))
    aio.redis.connection_pool.connection_kwargs["server"].connected = False

    async def scenario() -> list[object]:
        return await asyncio.gather(
            *(aio.create(TaskRequest(prompt=f"t{i}"), requeue_after_s=600) for i in range(n)),
            return_exceptions=True,
        )

    outcomes = asyncio.run(scenario())
    assert len(outcomes) == n and all(isinstance(o, Exception) for o in outcomes)
