"""Per-deployment rpm and tpm budgets, shared by every worker, enforced before the call.

`RateLimitMiddleware` reserves one request and the call's estimated tokens (`estimate_tokens`:
the prompt plus the whole output budget) from the deployment's shared GCRA budgets (`gcra`,
`ratelimit_store`), both or neither:

- a slot free now: call at once;
- a slot free within `max_wait_s`: the slot is already reserved, so sleep until it, then call
  (waiting callers are queued by the shared state itself and cannot all wake up and overshoot);
- later than that: raise `LocalRateLimited(wait_s=...)` without calling, and fallback moves on.

After the call the token reservation is corrected to the usage the vendor reported (`tokens_in +
tokens_out`; kept as estimated when it reported none). A call that never happened (a `Refused` from
an inner piece such as the breaker, or cancellation while waiting) gives back both reservations;
a failed call keeps its request and its prompt tokens but gives back the output budget it never
produced. A deployment with neither `rpm` nor `tpm` costs no round trip. The budgets are advisory
in one direction: if the store cannot be reached, the call goes ahead (the vendor's own 429 and
Retry-After remain the backstop).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from parjanya import metrics
from parjanya.config import Deployment
from parjanya.providers.base import (
    ChatRequest,
    ChatResponse,
    LocalRateLimited,
    ProviderError,
    Refused,
)
from parjanya.resilience.base import Next, estimate_tokens
from parjanya.resilience.gcra import DEFAULT_BURST_S, Demand, Limit
from parjanya.resilience.ratelimit_store import RateLimitStore

__all__ = ["RateLimitCapacity", "RateLimitMiddleware", "Remaining", "limits_for"]

log = logging.getLogger(__name__)


class Remaining(NamedTuple):
    """Units that could still start within the next minute; None where there is no limit."""

    rpm: float | None
    tpm: float | None


def limits_for(
    deployment: Deployment, burst_s: float = DEFAULT_BURST_S, headroom: float = 0.0
) -> list[Limit]:
    """The deployment's configured limits (none, rpm, tpm, or both), less `headroom`.

    Slots are reserved here, but calls reach the provider a few milliseconds later, each by its
    own delay: spacing measured at the provider jitters, and a minute there can see one call more
    than was reserved in any minute here. Reserving against a slightly lower rate keeps the
    provider's own count under its limit.
    """

    def budget(per_minute: int) -> int:
        return max(1, int(per_minute * (1.0 - headroom)))

    limits = []
    if deployment.rpm is not None:
        limits.append(Limit("rpm", budget(deployment.rpm), burst_s))
    if deployment.tpm is not None:
        limits.append(Limit("tpm", budget(deployment.tpm), burst_s))
    return limits


class RateLimitMiddleware:
    """Hold each call to its deployment's shared rpm/tpm budget: go, wait briefly, or refuse."""

    def __init__(
        self,
        store: RateLimitStore,
        max_wait_s: float = 5.0,
        *,
        burst_s: float = DEFAULT_BURST_S,
        headroom: float = 0.0,
        estimate: Callable[[ChatRequest], int] = estimate_tokens,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.max_wait_s = max_wait_s  # e.g. RetryConfig.max_retry_after_s
        self.burst_s = burst_s
        self.headroom = headroom
        self.estimate = estimate
        self.sleep = sleep

    async def __call__(
        self, deployment: Deployment, request: ChatRequest, call_next: Next
    ) -> ChatResponse:
        demands = self._demands(deployment, request)
        if not demands:
            return await call_next(deployment, request)
        try:
            reservation = await self.store.reserve(deployment.name, demands, self.max_wait_s)
        except Exception:
            log.warning("rate-limit store unreachable; letting %s through", deployment.name)
            return await call_next(deployment, request)
        if not reservation.allowed:
            metrics.RATE_LIMITED.labels(deployment.name).inc()
            raise LocalRateLimited(
                f"{deployment.name} has no rpm/tpm budget for "
                f"{reservation.wait_s:.1f}s (waiting at most {self.max_wait_s:g}s)",
                deployment=deployment.name,
                wait_s=reservation.wait_s,
            )
        called = False
        try:
            if reservation.wait_s > 0:
                metrics.RATE_LIMIT_WAITS.labels(deployment.name).observe(reservation.wait_s)
                await self.sleep(reservation.wait_s)
            called = True
            response = await call_next(deployment, request)
        except BaseException as error:
            await self._give_back(deployment.name, demands, request, error, called)
            raise
        used = response.tokens_in + response.tokens_out
        tokens = [d for d in demands if d.limit.dimension == "tpm"]
        if tokens and used > 0 and used != tokens[0].units:
            await self._adjust(deployment.name, [Demand(tokens[0].limit, used - tokens[0].units)])
        return response

    async def remaining(self, deployment: Deployment) -> Remaining:
        """What is left of each budget; (None, None) for an unlimited deployment, no round trip."""
        limits = limits_for(deployment, self.burst_s, self.headroom)
        left = await self.store.remaining(deployment.name, limits) if limits else []
        by_dimension = {x.dimension: n for x, n in zip(limits, left, strict=True)}
        return Remaining(by_dimension.get("rpm"), by_dimension.get("tpm"))

    def _demands(self, deployment: Deployment, request: ChatRequest) -> list[Demand]:
        return [
            Demand(x, 1 if x.dimension == "rpm" else self.estimate(request))
            for x in limits_for(deployment, self.burst_s, self.headroom)
        ]

    async def _give_back(
        self,
        name: str,
        demands: list[Demand],
        request: ChatRequest,
        error: BaseException,
        called: bool,
    ) -> None:
        if not called or isinstance(error, Refused):
            refunds = [Demand(d.limit, -d.units) for d in demands]  # nothing was sent
        elif isinstance(error, ProviderError):
            refunds = [
                Demand(d.limit, -min(d.units, request.max_tokens))
                for d in demands
                if d.limit.dimension == "tpm"
            ]
        else:
            return  # unknown: keep what was reserved
        if refunds:
            await self._adjust(name, refunds)

    async def _adjust(self, name: str, changes: list[Demand]) -> None:
        try:
            await self.store.adjust(name, changes)
        except Exception:
            log.warning("rate-limit store: could not correct the budget of %s", name)


class RateLimitCapacity:
    """The balancer's `CapacityProbe`: the scarcer budget's share left, 1.0 when unlimited."""

    def __init__(self, limiter: RateLimitMiddleware) -> None:
        self.limiter = limiter

    async def remaining(self, deployment: Deployment) -> float:
        rpm, tpm = await self.limiter.remaining(deployment)
        shares = [1.0]
        if rpm is not None and deployment.rpm:
            shares.append(rpm / deployment.rpm)
        if tpm is not None and deployment.tpm:
            shares.append(tpm / deployment.tpm)
        return max(0.0, min(shares))
