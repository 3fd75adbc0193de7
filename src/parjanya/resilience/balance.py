"""Ordering a tier's deployments for one call: one class per `TierConfig.balance` strategy.

Every balancer returns all the deployments: the first is tried first and the rest are the fallback
order, so a balancer only ever changes preference, never availability (breakers and rate limits
refuse inside the call chain). Equal scores keep the config's order, so every ordering is
deterministic given the stats.

| strategy         | first                                  | reads                          |
|------------------|----------------------------------------|--------------------------------|
| `ordered`        | the config's order                     | nothing                        |
| `round_robin`    | the next in a rotation shared by all   | the shared counter (LiveStats) |
| `weighted`       | random, in proportion to `weight`      | an RNG (injectable)            |
| `least_busy`     | fewest calls in flight, all workers    | LiveStats.inflight             |
| `lowest_latency` | unmeasured first, then lowest EWMA     | LiveStats.latency              |
| `lowest_cost`    | cheapest estimated call                | the request and prices         |
| `most_capacity`  | most rpm/tpm budget left               | a CapacityProbe (rate limiter) |
| `scored`         | lowest weighted cost, latency, quality | LiveStats.latency, hints       |

In the worker every strategy sits behind `governance.capabilities.FilterStage`, which first drops
the deployments a task may not use (its hard constraints, private-only prompts); that stage may
leave nothing, and the fallback chain then calls nothing.

The round-robin counter is shared in Redis rather than kept per process: Celery starts many worker
processes at once, and per-process counters that all start at zero would send every process's
first calls to the same deployment. One INCR per call is nothing next to a model call.

Stats are advisory: if the store cannot be read, the balancer logs it and uses the config's order
(or, for round robin, a per-process counter) rather than failing the call.

A new strategy is one class with an `order` method plus one entry in `BALANCERS`.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from parjanya.config import BalanceStrategy, Deployment, MatchingConfig
from parjanya.governance.capabilities import Scored
from parjanya.providers.base import ChatRequest
from parjanya.resilience.base import Balancer, estimate_tokens

__all__ = [
    "BALANCERS",
    "BalancerDeps",
    "CapacityProbe",
    "LeastBusy",
    "LiveStats",
    "LowestCost",
    "LowestLatency",
    "MostCapacity",
    "Ordered",
    "RoundRobin",
    "Weighted",
    "make_balancer",
    "rotation_group",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


class LiveStats(Protocol):
    """The read side of `track.TrackStore`, which satisfies it (this module imports no other piece)."""

    async def inflight(self, deployments: Sequence[str]) -> dict[str, int]: ...

    async def latency(self, deployments: Sequence[str]) -> dict[str, float | None]: ...

    async def rotate(self, group: str) -> int: ...


class CapacityProbe(Protocol):
    """How much of a deployment's shared rpm/tpm budget is left: 1.0 untouched or unlimited, 0.0 spent."""

    async def remaining(self, deployment: Deployment) -> float: ...


def _ranked(deployments: Sequence[Deployment], score: Sequence[float]) -> list[Deployment]:
    """Lowest score first; `sorted` is stable, so ties keep the config's order."""
    order = sorted(range(len(deployments)), key=lambda i: score[i])
    return [deployments[i] for i in order]


async def _read(step: Awaitable[T], fallback: T, strategy: str) -> T:
    try:
        return await step
    except Exception:
        log.warning("%s balancer: stats unavailable, using config order", strategy, exc_info=True)
        return fallback


class Ordered:
    """The config's order: primary, secondary, tertiary."""

    async def order(
        self, deployments: Sequence[Deployment], request: ChatRequest
    ) -> list[Deployment]:
        return list(deployments)


def rotation_group(deployments: Sequence[Deployment]) -> str:
    """One rotation per distinct list of deployments (so per tier, unless two tiers share one)."""
    names = "\x1f".join(d.name for d in deployments)
    return hashlib.sha256(names.encode()).hexdigest()[:16]


class RoundRobin:
    """Each call starts one further along the list; the rest follow in rotated config order."""

    def __init__(self, stats: LiveStats) -> None:
        self.stats = stats
        self._local = itertools.count(1)  # only when the shared counter cannot be reached

    async def order(
        self, deployments: Sequence[Deployment], request: ChatRequest
    ) -> list[Deployment]:
        if not deployments:
            return []
        turn = await _read(self.stats.rotate(rotation_group(deployments)), None, "round_robin")
        start = ((turn if turn is not None else next(self._local)) - 1) % len(deployments)
        return [*deployments[start:], *deployments[:start]]


class Weighted:
    """First drawn at random in proportion to `Deployment.weight`; the rest by weight, heaviest first."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()

    async def order(
        self, deployments: Sequence[Deployment], request: ChatRequest
    ) -> list[Deployment]:
        if not deployments:
            return []
        point = self.rng.random() * sum(d.weight for d in deployments)
        chosen = len(deployments) - 1  # rounding can leave `point` a hair past the last bound
        for index, bound in enumerate(itertools.accumulate(d.weight for d in deployments)):
            if point < bound:
                chosen = index
                break
        rest = [d for i, d in enumerate(deployments) if i != chosen]
        return [deployments[chosen], *_ranked(rest, [-d.weight for d in rest])]


class LeastBusy:
    """Fewest calls in flight across every worker first."""

    def __init__(self, stats: LiveStats) -> None:
        self.stats = stats

    async def order(
        self, deployments: Sequence[Deployment], request: ChatRequest
    ) -> list[Deployment]:
        names = [d.name for d in deployments]
        counts = await _read(self.stats.inflight(names), {}, "least_busy")
        return _ranked(deployments, [counts.get(n, 0) for n in names])


class LowestLatency:
    """Unmeasured deployments first (so they get measured), then lowest EWMA latency."""

    def __init__(self, stats: LiveStats) -> None:
        self.stats = stats

    async def order(
        self, deployments: Sequence[Deployment], request: ChatRequest
    ) -> list[Deployment]:
        names = [d.name for d in deployments]
        latency = await _read(self.stats.latency(names), {}, "lowest_latency")
        unmeasured = float("-inf")
        return _ranked(deployments, [_or(latency.get(n), unmeasured) for n in names])


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


class LowestCost:
    """Cheapest call first, priced at the estimated input and the full output budget."""

    async def order(
        self, deployments: Sequence[Deployment], request: ChatRequest
    ) -> list[Deployment]:
        tokens_in = estimate_tokens(request) - request.max_tokens
        return _ranked(
            deployments, [d.cost_usd(tokens_in, request.max_tokens) for d in deployments]
        )


class MostCapacity:
    """Most remaining rpm/tpm budget (a fraction in [0, 1] from the rate limiter) first."""

    def __init__(self, capacity: CapacityProbe) -> None:
        self.capacity = capacity

    async def order(
        self, deployments: Sequence[Deployment], request: ChatRequest
    ) -> list[Deployment]:
        probes = asyncio.gather(*(self.capacity.remaining(d) for d in deployments))
        left = await _read(probes, [1.0] * len(deployments), "most_capacity")
        return _ranked(deployments, [-min(1.0, max(0.0, x)) for x in left])


@dataclass(frozen=True)
class BalancerDeps:
    """Everything a balancer may need; each registry entry takes what its class uses."""

    stats: LiveStats
    capacity: CapacityProbe | None
    rng: random.Random | None
    matching: MatchingConfig


def _most_capacity(deps: BalancerDeps) -> Balancer:
    if deps.capacity is None:
        raise ValueError("balance strategy 'most_capacity' needs a capacity probe (rate limiter)")
    return MostCapacity(deps.capacity)


#: strategy name -> how to build its balancer. `config.BalanceStrategy` names the same keys.
BALANCERS: dict[BalanceStrategy, Callable[[BalancerDeps], Balancer]] = {
    "ordered": lambda deps: Ordered(),
    "round_robin": lambda deps: RoundRobin(deps.stats),
    "weighted": lambda deps: Weighted(deps.rng),
    "least_busy": lambda deps: LeastBusy(deps.stats),
    "lowest_latency": lambda deps: LowestLatency(deps.stats),
    "lowest_cost": lambda deps: LowestCost(),
    "most_capacity": _most_capacity,
    "scored": lambda deps: Scored(deps.matching, deps.stats),
}


def make_balancer(
    strategy: BalanceStrategy,
    *,
    stats: LiveStats,
    capacity: CapacityProbe | None,
    rng: random.Random | None = None,
    matching: MatchingConfig | None = None,
) -> Balancer:
    """The balancer for a tier's `balance` setting. Raises ValueError for an unknown strategy or
    `most_capacity` without a probe, so a bad config fails when the worker starts."""
    try:
        build = BALANCERS[strategy]
    except KeyError:
        raise ValueError(f"unknown balance strategy {strategy!r}") from None
    deps = BalancerDeps(
        stats=stats, capacity=capacity, rng=rng, matching=matching or MatchingConfig()
    )
    return build(deps)
