"""The store's asyncio half, for the HTTP API: create a task, read it, wait for its end.

The API serves many submissions and long polls from one event loop, so it cannot block the loop
on Redis or spend a thread per waiter as the SDK's `TaskStore` does. `create` runs the same
CREATE script with the same arguments (`creation.create_call`). The wait is the SDK's wake-up on
`redis.asyncio`: every
terminal write (TRANSITION, CANCEL) pushes onto the task's `done` list, and a waiter BLMOVEs that
list onto itself, so the element stays for every other waiter and no one polls the task's state.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from redis import asyncio as aioredis

from parjanya import keys
from parjanya.broker.envelope import Enqueue
from parjanya.connect import async_redis_client
from parjanya.schema import HopMessage, TaskRequest, TaskResult
from parjanya.store import scripts
from parjanya.store.batch import ScriptBatcher
from parjanya.store.creation import Created, create_call, created_of, result_of


class AsyncTaskStore:
    def __init__(self, client: aioredis.Redis, *, idempotency_ttl_s: int = 86_400) -> None:
        self.redis = client
        self.idempotency_ttl_s = idempotency_ttl_s
        self._create = ScriptBatcher(client, client.register_script(scripts.CREATE))

    @classmethod
    def from_url(cls, url: str, *, idempotency_ttl_s: int = 86_400) -> AsyncTaskStore:
        client = async_redis_client(url, health_check_interval=30)
        return cls(client, idempotency_ttl_s=idempotency_ttl_s)

    async def create(
        self,
        request: TaskRequest,
        *,
        requeue_after_s: float,
        enqueue: Callable[[HopMessage], Enqueue | None] = lambda _: None,
    ) -> Created:
        """As `TaskStore.create`: record a task, and push its intake message in the same step."""
        call_keys, call_args, enqueued = create_call(
            request,
            requeue_after_s=requeue_after_s,
            idempotency_ttl_s=self.idempotency_ttl_s,
            enqueue=enqueue,
        )
        # Creates that arrive in the same turn of the event loop go to Redis as one pipeline of
        # EVALSHAs: one round trip for all of them, and no SCRIPT EXISTS before it.
        reply = await self._create(call_keys, call_args)
        return created_of(reply, request, call_args, enqueued)

    async def get(self, task_id: str) -> TaskResult | None:
        """As `TaskStore.get`: the doc, with the hash's `state` as the truth about its status."""
        state, doc = await self.redis.hmget(keys.task(task_id), ["state", "doc"])
        if state is None or doc is None:
            return None
        return result_of(state, doc)

    async def wait_done(self, task_id: str, timeout_s: float) -> bool:
        """True once the task is terminal; False when `timeout_s` passes first."""
        done = keys.done(task_id)
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bool(await self.redis.exists(done))
            # Slices of at most a second, as the SDK's wait: a dropped connection costs one slice.
            wait = max(0.01, min(remaining, 1.0))  # 0 would mean 'block forever'
            # Redis >= 6 takes fractional seconds; the stubs say int.
            if await self.redis.blmove(done, done, wait, "RIGHT", "LEFT"):  # type: ignore[arg-type]
                return True

    async def close(self) -> None:
        await self.redis.aclose()
