"""The store's asyncio reader: a task's result, and a wait that the task's end wakes.

The HTTP API serves many long polls from one event loop, so it cannot spend a thread per waiter as
the SDK's blocking `TaskStore.wait_done` does. This is the same wake-up on `redis.asyncio`: every
terminal write (TRANSITION, CANCEL) pushes onto the task's `done` list, and a waiter BLMOVEs that
list onto itself, so the element stays for every other waiter and no one polls the task's state.
"""

from __future__ import annotations

import time

from redis import asyncio as aioredis

from parjanya import keys
from parjanya.schema import TaskResult, TaskStatus


class AsyncTaskReader:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    @classmethod
    def from_url(cls, url: str) -> AsyncTaskReader:
        client = aioredis.Redis.from_url(
            url, socket_timeout=30, socket_connect_timeout=5, health_check_interval=30
        )
        return cls(client)

    async def get(self, task_id: str) -> TaskResult | None:
        """As `TaskStore.get`: the doc, with the hash's `state` as the truth about its status."""
        state, doc = await self.redis.hmget(keys.task(task_id), ["state", "doc"])
        if state is None or doc is None:
            return None
        result = TaskResult.model_validate_json(doc)
        result.status = TaskStatus(state.decode() if isinstance(state, bytes) else state)
        return result

    async def wait_done(self, task_id: str, timeout_s: float) -> bool:
        """True once the task is terminal; False when `timeout_s` passes first."""
        done_key = keys.done(task_id)
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bool(await self.redis.exists(done_key))
            # Slices of at most a second, as the SDK's wait: a dropped connection costs one slice.
            wait = max(0.01, min(remaining, 1.0))  # 0 would mean 'block forever'
            if await self.redis.blmove(done_key, done_key, wait, "RIGHT", "LEFT"):  # type: ignore[arg-type]
                return True

    async def close(self) -> None:
        await self.redis.aclose()
