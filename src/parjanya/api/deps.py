"""What every route depends on: the process's API state, and who is calling.

`current_caller` asks the process's `Access` (chosen once from `api.auth`, see `auth.py`) who
is calling; every task route depends on it and scopes reads, waits and cancels through
`Caller.owns`. Health routes do not depend on it, so probes need no key.
Dependencies are `async def` although they do not await: FastAPI runs a plain `def` dependency in
its threadpool, a thread hop per request that `bench/api.py` measured.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute

from parjanya.api.access_log import TENANT
from parjanya.api.auth import Access, Caller, access_for
from parjanya.api.readiness import Readiness
from parjanya.client import Client, as_request, refuse_unservable
from parjanya.config import ParjanyaConfig, Settings
from parjanya.governance.budgets import SpendLedger
from parjanya.governance.shedding import AsyncShedGate
from parjanya.limits import DEFAULT_LIMITS
from parjanya.resilience.ratelimit_store import RedisRateLimitStore
from parjanya.schema import TaskRequest
from parjanya.store import Created
from parjanya.store.aio import AsyncTaskStore
from parjanya.store.apikeys import ApiKeyStore


@dataclass
class ApiState:
    """Everything a route needs, built once per process by the app's lifespan (no module state)."""

    settings: Settings
    config: ParjanyaConfig
    client: Client  # the SDK: builds intake messages; cancels and publishes in the threadpool
    store: AsyncTaskStore  # creates, reads and long polls on the event loop (asyncio redis)
    readiness: Readiness
    access: Access  # who may call: decided once from `api.auth`
    spend: SpendLedger  # tenants' standings, read on the event loop
    shedding: AsyncShedGate | None = None  # load shedding: built at first use (store, broker)

    @classmethod
    def open(cls, settings: Settings, config: ParjanyaConfig) -> ApiState:
        """Builds clients only; nothing connects until the first request needs it."""
        client = Client(settings.broker_url, result_url=settings.result_url, config=config)
        store = AsyncTaskStore.from_url(
            settings.store_url, idempotency_ttl_s=config.reliability.idempotency_ttl_s
        )
        access = access_for(config.api, ApiKeyStore(store.redis), RedisRateLimitStore(store.redis))
        readiness = Readiness(client, config.api.ready_cache_s)
        spend = SpendLedger(config.governance.budgets, aio=store.redis)
        return cls(settings, config, client, store, readiness, access, spend)

    async def submit(self, task: TaskRequest) -> Created:
        """As `Client.submit`, without blocking the loop: one CREATE script that also enqueues
        when the store and the broker share a database; else a publish in the threadpool.

        A request is validated again under the configured `limits` when they are lower than the
        built-in ones; its ValidationError is a 422 (`errors.install`).
        """
        if self.config.limits != DEFAULT_LIMITS:  # FastAPI validated under the built-in bounds
            task = as_request(task, self.config.limits)
        # `govern`'s two checks, on the loop: a thread hop per request was 6 % of the API's CPU
        refuse_unservable(task, self.config)
        refusal = (await self.spend.astanding(task.tenant)).refusal()
        if refusal is not None:
            raise refusal  # TenantOverBudget: a 429 (`errors.install`)
        if self.shedding is None:
            self.shedding = AsyncShedGate(
                self.store.redis, self.config.admission, self.client.queue_depths
            )
        await self.shedding.check(task.sla.klass)  # Overloaded: a 503 (`errors.install`)
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


#: The bearer scheme as the OpenAPI document shows it (the docs' "Authorize" button).
BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key: `parjanya keys create`.",
}


def bearer_token(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>` (RFC 6750: the scheme in any case)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def current_caller(request: Request) -> Caller:
    """Who is calling. It reads the header and the state from the request itself rather than
    through sub-dependencies (`HTTPBearer`, `api_state`): FastAPI solves each one on every
    request, and this runs on all of them; `declare_bearer` puts the scheme in the document."""
    access: Access = request.app.state.parjanya.access
    caller = await access.caller(bearer_token(request))
    setattr(request.state, TENANT, caller.tenant)  # for the request's access log line
    return caller


def declare_bearer(document: dict[str, Any], routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI document with the bearer scheme on exactly the operations whose route depends
    on `current_caller`, read from the routes, so it cannot show a key a route does not check."""
    schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes["HTTPBearer"] = BEARER_SCHEME
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        if current_caller in _calls(route.dependant):
            for method in route.methods or ():
                document["paths"][route.path_format][method.lower()]["security"] = [
                    {"HTTPBearer": []}
                ]
    return document


def _calls(dependant: Dependant) -> set[Any]:
    """Every function a route's dependencies call, sub-dependencies included."""
    found: set[Any] = set()
    stack = list(dependant.dependencies)
    while stack:
        dependency = stack.pop()
        found.add(dependency.call)
        stack.extend(dependency.dependencies)
    return found


State = Annotated[ApiState, Depends(api_state)]
CurrentCaller = Annotated[Caller, Depends(current_caller)]
