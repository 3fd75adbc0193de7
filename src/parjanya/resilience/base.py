"""The two shapes every resilience piece takes: a call middleware, or a deployment orderer.

A tier call walks the tier's deployments in the order a `Balancer` gives; each deployment call goes
through a chain of `CallMiddleware` around the provider adapter (dramatiq's middleware idea, in
the async `call_next` style). Each piece knows one concern and nothing of the others:

    fallback over balancer.order(deployments)            resilience/fallback.py, balance.py
      └─ retry (per error type budgets)                  retry.py, run by fallback.py
           └─ cache → rate limit → breaker → track       cache.py, ratelimit.py, breaker.py, ...
                └─ provider adapter (HTTP)                providers/openai.py, anthropic.py

Retry wraps the middlewares, so each try passes through every piece again (one pass, one try, one
`Attempt`); `worker/chain.py` lists the pieces and tests/unit/test_chain_order.py pins the order.

A piece refuses by raising a `providers.base.Refused` subtype (no call made: fallback moves on at
once) and reports failures by letting the provider's `ProviderError` pass through after looking at
it. Shared state (breaker, rate limit, in-flight counts, latency, cache) lives behind small async
store interfaces with an in-memory version for unit tests and a Redis version shared by every
worker process and host.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Protocol

from parjanya.config import Deployment
from parjanya.providers.base import ChatRequest, ChatResponse

#: What a middleware calls to continue the chain for one deployment.
Next = Callable[[Deployment, ChatRequest], Awaitable[ChatResponse]]


class CallMiddleware(Protocol):
    """One concern around one deployment call."""

    async def __call__(
        self, deployment: Deployment, request: ChatRequest, call_next: Next
    ) -> ChatResponse: ...


class CallIds:
    """Ids no other process or instance will draw: a random prefix taken once, then a counter.

    Probe leases and in-flight entries live in a store every worker shares, so their ids must be
    unique across processes. `uuid4` reads the OS's random source on every call, and two per
    call were 4 % of a tier worker's event loop at 500 calls in flight (bench/inflight.py).
    """

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:16]
        self._counter = itertools.count()

    def new(self) -> str:
        return f"{self._prefix}{next(self._counter):x}"


class Balancer(Protocol):
    """Orders a tier's deployments for one call: the first is tried first, the rest are fallbacks."""

    async def order(
        self, deployments: Sequence[Deployment], request: ChatRequest
    ) -> list[Deployment]: ...


def compose(middlewares: Sequence[CallMiddleware], endpoint: Next) -> Next:
    """Nest the pieces around `endpoint`; the first of the list is the outermost."""
    call = endpoint
    for middleware in reversed(middlewares):
        call = partial(_step, middleware, call)
    return call


async def _step(
    middleware: CallMiddleware, call_next: Next, deployment: Deployment, request: ChatRequest
) -> ChatResponse:
    return await middleware(deployment, request, call_next)


def estimate_tokens(request: ChatRequest) -> int:
    """Input tokens plus the output budget, estimated before a call (chars / 4, like the sim)."""
    chars = sum(len(m.content) for m in request.messages)
    return chars // 4 + 1 + request.max_tokens
