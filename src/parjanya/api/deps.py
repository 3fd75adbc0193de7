"""What every route depends on: the process's API state, and who is calling.

`current_caller` is the seam for tenants and API keys (issue 13, point 2): today every caller is
anonymous and a task keeps the tenant its body names; a key-checking dependency will replace this
one function, and every route already scopes reads, waits and cancels through `Caller.owns`.
Dependencies are `async def` although they do not await: FastAPI runs a plain `def` dependency in
its threadpool, a thread hop per request that `bench/api.py` measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from parjanya.api.readiness import Readiness
from parjanya.client import Client, as_request, govern
from parjanya.config import ParjanyaConfig, Settings
from parjanya.limits import DEFAULT_LIMITS
from parjanya.schema import TaskRequest, TaskResult
from parjanya.store import Created
from parjanya.store.aio import AsyncTaskStore


@dataclass
class ApiState:
    """Everything a route needs, built once per process by the app's lifespan (no module state)."""

    settings: Settings
    config: ParjanyaConfig
    client: Client  # the SDK: builds intake messages; cancels and publishes in the threadpool
    store: AsyncTaskStore  # creates, reads and long polls on the event loop (asyncio redis)
    readiness: Readiness

    @classmethod
    def open(cls, settings: Settings, config: ParjanyaConfig) -> ApiState:
        """Builds clients only; nothing connects until the first request needs it."""
        client = Client(settings.broker_url, result_url=settings.result_url, config=config)
        store = AsyncTaskStore.from_url(
            settings.store_url, idempotency_ttl_s=config.reliability.idempotency_ttl_s
        )
        return cls(settings, config, client, store, Readiness(client, config.api.ready_cache_s))

    async def submit(self, task: TaskRequest) -> Created:
        """As `Client.submit`, without blocking the loop: one CREATE script that also enqueues
        when the store and the broker share a database; else a publish in the threadpool.

        A request is validated again under the configured `limits` when they are lower than the
        built-in ones; its ValidationError is a 422 (`errors.install`).
        """
        if self.config.limits != DEFAULT_LIMITS:  # FastAPI validated under the built-in bounds
            task = as_request(task, self.config.limits)
        await run_in_threadpool(govern, task, self.config, self.client.spend)
        created = await self.store.create(
            task,
            requeue_after_s=self.config.reliability.requeue_after_s,
            enqueue=self.client.outbox.message_for,
        )
        if created.created and not created.enqueued:
            await run_in_threadpool(self.client.publish_created, created, task)
        return created

    async def close(self) -> None:
        await self.store.close()
        self.client.close()


async def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.parjanya
    return state


@dataclass(frozen=True)
class Caller:
    """Who is calling. `tenant=None`: anonymous, the only kind until keys exist."""

    tenant: str | None = None

    def stamp(self, request: TaskRequest) -> TaskRequest:
        """The task's tenant comes from the caller when it has one, never from the body."""
        if self.tenant is None:
            return request
        return request.model_copy(update={"tenant": self.tenant})

    def owns(self, result: TaskResult) -> bool:
        return self.tenant is None or result.tenant == self.tenant


async def current_caller() -> Caller:
    return Caller()


State = Annotated[ApiState, Depends(api_state)]
CurrentCaller = Annotated[Caller, Depends(current_caller)]
