"""Capability matching: which deployments may serve a task at all, then which of them is best.

Hard constraints come first, each a small check that names why a deployment is out:

| check        | a deployment is out when                                                   |
|--------------|----------------------------------------------------------------------------|
| `window`     | its context window is below the tokens the task needs (input + output)     |
| `capability` | it lacks a capability the task needs (tools and JSON mode are implied)     |
| `residency`  | its residency tag is not the one the task requires                         |
| `cost`       | its estimated call costs more than the task's `max_cost_usd`               |
| `latency`    | its expected latency (`latency_s`) is above `max_latency_s`, or unknown    |
| `privacy`    | the task's prompt carries PII under `pii_action: private` and it is public |

The same checks run in three places: at submit (`unservable`: no allowed tier has a deployment
that could serve it, so the caller gets a validation error, never a guess), in the classifier
(`matching` in `classify/policy.py`: route to a tier that has one), and in the tier call as the
balancer's first stage (`FilterStage`: the strategy orders only what remains). The window is
judged only in the classifier (with its token estimate); at submit the classifier's estimate is
not known yet, and in the tier call the fallback chain owns windows (skip, larger window,
truncation), so those two use `TASK_CHECKS`. `Scored` is the `balance: scored` strategy: a weighted sum of
cost, latency and quality (weights in `governance.matching`) among what remains.

The tier call learns the task's needs from a context variable (`requiring`), as the cache learns
a task's opt-out: a balancer sees only the provider request, which carries no task policy.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from parjanya.config import Deployment, MatchingConfig, ParjanyaConfig
from parjanya.providers.base import ChatRequest
from parjanya.queues import TIERS, Tier, tier_rank
from parjanya.resilience.base import Balancer, estimate_tokens
from parjanya.schema import TaskRequest

__all__ = [
    "CHECKS",
    "TASK_CHECKS",
    "FilterStage",
    "Needs",
    "Scored",
    "current_needs",
    "eligible",
    "needs_for",
    "requiring",
    "unmet",
    "unservable",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Needs:
    """What a task asks of the deployment that answers it."""

    input_tokens: int
    output_tokens: int
    capabilities: frozenset[str] = frozenset()
    residency: str | None = None
    max_cost_usd: float | None = None
    max_latency_s: float | None = None
    private_only: bool = False
    # Filled by `FilterStage`: why deployments were left out, for the task's history.
    excluded: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def window_only(self) -> bool:
        """Nothing asked beyond a window large enough (most tasks)."""
        return not (
            self.capabilities
            or self.residency is not None
            or self.max_cost_usd is not None
            or self.max_latency_s is not None
            or self.private_only
        )


def needs_for(request: TaskRequest, input_tokens: int, *, private_only: bool = False) -> Needs:
    implied = {"tools"} if request.tools else set()
    if request.response_format == "json":
        implied.add("json")
    constraints = request.constraints
    return Needs(
        input_tokens=input_tokens,
        output_tokens=request.max_output_tokens,
        capabilities=frozenset({*implied, *constraints.capabilities}),
        residency=constraints.residency,
        max_cost_usd=constraints.max_cost_usd,
        max_latency_s=constraints.max_latency_s,
        private_only=private_only,
    )


Check = Callable[[Deployment, Needs], str | None]


def _window(d: Deployment, needs: Needs) -> str | None:
    needed = needs.input_tokens + needs.output_tokens
    if d.context_window < needed:
        return f"window {d.context_window} < about {needed} tokens"
    return None


def _capability(d: Deployment, needs: Needs) -> str | None:
    missing = sorted(needs.capabilities - set(d.capabilities))
    return f"lacks {', '.join(missing)}" if missing else None


def _residency(d: Deployment, needs: Needs) -> str | None:
    if needs.residency is not None and d.residency != needs.residency:
        return f"residency {d.residency or 'untagged'} is not {needs.residency}"
    return None


def _cost(d: Deployment, needs: Needs) -> str | None:
    if needs.max_cost_usd is None:
        return None
    cost = d.cost_usd(needs.input_tokens, needs.output_tokens)
    if cost > needs.max_cost_usd:
        return f"a call costs about ${cost:.6g} > max_cost_usd ${needs.max_cost_usd:.6g}"
    return None


def _latency(d: Deployment, needs: Needs) -> str | None:
    if needs.max_latency_s is None:
        return None
    if d.latency_s is None:
        return "declares no latency_s to hold max_latency_s against"
    if d.latency_s > needs.max_latency_s:
        return f"latency {d.latency_s:g}s > max_latency_s {needs.max_latency_s:g}s"
    return None


def _privacy(d: Deployment, needs: Needs) -> str | None:
    if needs.private_only and not d.private:
        return "not private, and the prompt carries PII (pii_action: private)"
    return None


#: The hard constraints, in the order their reasons are reported.
CHECKS: tuple[Check, ...] = (_window, _capability, _residency, _cost, _latency, _privacy)
#: All but the window, for the submit check and the filter stage: windows are judged with the
#: classifier's token estimate (its `context_window` rule), and in the tier call by the fallback
#: chain, which skips a window too small (recorded), tries a larger one, and truncates when none
#: fits; a filter that dropped them first would leave nothing to truncate for.
TASK_CHECKS: tuple[Check, ...] = CHECKS[1:]


def unmet(deployment: Deployment, needs: Needs, checks: Sequence[Check] = CHECKS) -> list[str]:
    """Every reason `deployment` cannot serve `needs` (empty: it can)."""
    return [why for check in checks if (why := check(deployment, needs)) is not None]


def eligible(
    deployments: Sequence[Deployment], needs: Needs, checks: Sequence[Check] = CHECKS
) -> list[Deployment]:
    return [d for d in deployments if not unmet(d, needs, checks)]


def explain(
    deployments: Sequence[Deployment], needs: Needs, checks: Sequence[Check] = CHECKS
) -> str:
    """One line per deployment saying why it is out: the text of a refusal."""
    return "; ".join(f"{d.name}: {', '.join(unmet(d, needs, checks))}" for d in deployments)


def submit_tokens(request: TaskRequest) -> int:
    """Input tokens as known before classification: chars / 4 plus the caller's context hint."""
    return request.prompt_chars() // 4 + 1 + (request.context_tokens or 0)


def unservable(request: TaskRequest, config: ParjanyaConfig) -> str | None:
    """Why no deployment of any tier the request allows could serve it, or None.

    What cannot be known before classification (PII, the SLA's floor) is left to the classifier;
    everything here is known from the request and the config alone.
    """
    low = tier_rank(request.min_tier) if request.min_tier else 0
    high = tier_rank(request.max_tier) if request.max_tier else len(TIERS) - 1
    allowed = [d for tier in TIERS[low : high + 1] for d in config.tiers[tier].deployments]
    needs = needs_for(request, submit_tokens(request))
    if eligible(allowed, needs, TASK_CHECKS):
        return None
    return f"no deployment can serve this task ({explain(allowed, needs, TASK_CHECKS)})"


def serves(deployment: Deployment, needs: Needs, checks: Sequence[Check] = CHECKS) -> bool:
    """Whether `deployment` meets `needs`: `unmet` without its reasons, stopping at the first."""
    return all(check(deployment, needs) is None for check in checks)


def tiers_serving(config: ParjanyaConfig, needs: Needs) -> list[int]:
    """The ranks of the tiers with at least one deployment that meets `needs` (the classifier
    asks this of every task: each tier stops at its first deployment that serves)."""
    return [
        rank
        for rank, tier in enumerate(TIERS)
        if any(serves(d, needs) for d in config.tiers[tier].deployments)
    ]


class LatencyStats(Protocol):
    """The latency read of `track.TrackStore` (balance.LiveStats has it too)."""

    async def latency(self, deployments: Sequence[str]) -> dict[str, float | None]: ...


# --- the task's needs, as the tier call sees them -------------------------------------------

_needs: contextvars.ContextVar[Needs | None] = contextvars.ContextVar(
    "parjanya_task_needs", default=None
)


@contextlib.contextmanager
def requiring(needs: Needs | None) -> Iterator[None]:
    """Within the block, the balancer's filter stage holds every call to `needs`."""
    token = _needs.set(needs)
    try:
        yield
    finally:
        _needs.reset(token)


def current_needs() -> Needs | None:
    return _needs.get()


class FilterStage:
    """The balancer's first stage: drop what the task may not use, then let `inner` order the rest.

    It may return nothing; the fallback chain then calls no deployment at all. It never raises
    (a failing strategy gets the eligible deployments in config order), since the fallback chain
    answers a failing balancer with the whole configured order, which is exactly what must not
    happen to a private prompt.
    """

    def __init__(self, inner: Balancer) -> None:
        self.inner = inner

    async def order(
        self, deployments: Sequence[Deployment], request: ChatRequest
    ) -> list[Deployment]:
        needs = current_needs()
        kept: list[Deployment] = []
        for deployment in deployments:
            reasons = [] if needs is None else unmet(deployment, needs, TASK_CHECKS)
            if reasons and needs is not None:
                needs.excluded[deployment.name] = ", ".join(reasons)
            else:
                kept.append(deployment)
        if not kept:
            return []
        try:
            return [d for d in await self.inner.order(kept, request) if d in kept]
        except Exception:  # the filtered list in config order, never the unfiltered one
            log.exception("balancer failed; using the eligible deployments in config order")
            return kept


class Scored:
    """Lowest weighted score first: cost and latency relative to the dearest and slowest
    candidate, minus quality. Ties keep the config's order."""

    def __init__(self, config: MatchingConfig, stats: LatencyStats) -> None:
        self.config = config
        self.stats = stats

    async def order(
        self, deployments: Sequence[Deployment], request: ChatRequest
    ) -> list[Deployment]:
        if not deployments:
            return []
        tokens_in = estimate_tokens(request) - request.max_tokens
        costs = [d.cost_usd(tokens_in, request.max_tokens) for d in deployments]
        try:
            measured = await self.stats.latency([d.name for d in deployments])
        except Exception:
            log.warning("scored balancer: latency unavailable, using hints", exc_info=True)
            measured = {}
        latencies = [
            _first(measured.get(d.name), d.latency_s, self.config.default_latency_s)
            for d in deployments
        ]
        w = self.config.weights
        top_cost, top_latency = max(costs) or 1.0, max(latencies) or 1.0
        score = [
            w.cost * c / top_cost + w.latency * t / top_latency - w.quality * d.quality
            for c, t, d in zip(costs, latencies, deployments, strict=True)
        ]
        order = sorted(range(len(deployments)), key=lambda i: score[i])
        return [deployments[i] for i in order]


def _first(*values: float | None) -> float:
    return next(v for v in values if v is not None)


def tier_of(config: ParjanyaConfig, deployment: str) -> Tier:
    for tier in TIERS:
        if any(d.name == deployment for d in config.tiers[tier].deployments):
            return tier
    raise KeyError(deployment)
