"""What every route depends on: the process's API state, and who is calling.

`current_caller` is the seam for tenants and API keys (issue 13, point 2): today every caller is
anonymous and a task keeps the tenant its body names; a key-checking dependency will replace this
one function, and every route already scopes reads, waits and cancels through `Caller.owns`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from parjanya.api.readiness import Readiness
from parjanya.client import Client
from parjanya.config import ParjanyaConfig, Settings
from parjanya.schema import TaskRequest, TaskResult
from parjanya.store.waiting import AsyncTaskReader


@dataclass
class ApiState:
    """Everything a route needs, built once per process by the app's lifespan (no module state)."""

    settings: Settings
    config: ParjanyaConfig
    client: Client  # submits and cancels (sync redis; called from the threadpool)
    reader: AsyncTaskReader  # reads and long polls (asyncio redis; one connection per waiter)
    readiness: Readiness

    @classmethod
    def open(cls, settings: Settings, config: ParjanyaConfig) -> ApiState:
        """Builds clients only; nothing connects until the first request needs it."""
        client = Client(settings.broker_url, result_url=settings.result_url, config=config)
        reader = AsyncTaskReader.from_url(settings.store_url)
        return cls(settings, config, client, reader, Readiness(client, config.api.ready_cache_s))

    async def close(self) -> None:
        await self.reader.close()
        self.client.close()


def api_state(request: Request) -> ApiState:
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


def current_caller() -> Caller:
    return Caller()


State = Annotated[ApiState, Depends(api_state)]
CurrentCaller = Annotated[Caller, Depends(current_caller)]
