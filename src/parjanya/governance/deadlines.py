"""Deadlines: a task past `deadline_s` is never executed late, and no hop starts that cannot finish.

Three places notice, whichever comes first:
- the store's CLAIM and REAP scripts end a task whose `deadline_at` has passed `expired` instead of
  running or republishing its hop (`store/scripts.py`), so a hop that waited out its deadline on a
  queue never reaches a provider;
- routing (the classifier hop) skips a tier whose estimate, `latency_quantile` (p95) of its recent
  hop run times plus the median recent queue wait of the task's SLA class on it, exceeds the time
  left, trying the decided tier first and then the ones above it up to the decision's max tier; with
  none that fits, the task ends `expired` there;
- the tier hop checks the time left right before its call, and escalation does not start a hop on a
  tier whose estimate exceeds it: a weak answer is then kept (flagged low confidence), and a task
  with no answer ends `expired`.

A tier with no samples yet has no estimate and is assumed to fit: the rule refuses only on evidence.
The estimates are capped Redis lists per tier (and per tier and class for waits), written by every
tier worker after each hop in one batched script call per turn of its loop, read here on demand
(only for tasks that carry a deadline).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import redis
import redis.asyncio as aioredis

from parjanya import keys, results
from parjanya.config import AdmissionConfig
from parjanya.queues import TIERS, SlaClass, Stage, Tier, tier_rank
from parjanya.schema import ErrorInfo, RoutingDecision, TaskRequest, TaskResult, TaskStatus, utcnow
from parjanya.store import TaskStore
from parjanya.store.batch import ScriptCall

#: Record one hop: its run time on the tier's list, its wait on the (tier, class) list; both capped.
RECORD = """
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[3]) - 1)
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
return 1
"""


def time_left(request: TaskRequest, doc: TaskResult, now: datetime | None = None) -> float | None:
    """Seconds until the task's deadline (negative: past it), or None without a deadline."""
    if request.deadline_s is None:
        return None
    return request.deadline_s - ((now or utcnow()) - doc.created_at).total_seconds()


def quantile(samples: Sequence[float], q: float) -> float:
    """The nearest-rank quantile of `samples` (which must not be empty)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def estimate_of(run: Sequence[float], wait: Sequence[float], q: float) -> float | None:
    """A tier's time to answer: quantile `q` of its run times plus the median wait; None: unknown."""
    if not run:
        return None
    return quantile(run, q) + (quantile(wait, 0.5) if wait else 0.0)


def candidates(decided: Tier, ceiling: Tier) -> list[Tier]:
    """The decided tier, then each tier above it up to `ceiling`: what routing may skip to."""
    return [t for t in TIERS if tier_rank(decided) <= tier_rank(t) <= tier_rank(ceiling)]


def first_fitting(
    tiers: Sequence[Tier], left: float, estimate: Callable[[Tier], float | None]
) -> Tier | None:
    for tier in tiers:
        guess = estimate(tier)
        if guess is None or guess <= left:
            return tier
    return None


def _floats(values: list[Any]) -> list[float]:
    return [float(v) for v in values]


class LatencyBook:
    """The Redis-kept estimates: written by tier workers, read by routing and escalation."""

    def __init__(self, config: AdmissionConfig) -> None:
        self.quantile, self.samples = config.latency_quantile, config.latency_samples

    def record_call(self, tier: Tier, sla: SlaClass, wait_s: float, run_s: float) -> ScriptCall:
        """The keys and arguments of one RECORD call, for a `ScriptBatcher`."""
        return (
            [keys.latency_run(tier), keys.latency_wait(tier, sla)],
            [round(run_s, 4), round(max(0.0, wait_s), 4), self.samples],
        )

    def estimate(self, client: redis.Redis, tier: Tier, sla: SlaClass) -> float | None:
        with client.pipeline(transaction=False) as pipe:
            pipe.lrange(keys.latency_run(tier), 0, -1)
            pipe.lrange(keys.latency_wait(tier, sla), 0, -1)
            run, wait = pipe.execute()
        return estimate_of(_floats(run), _floats(wait), self.quantile)

    async def aestimate(self, client: aioredis.Redis, tier: Tier, sla: SlaClass) -> float | None:
        async with client.pipeline(transaction=False) as pipe:
            pipe.lrange(keys.latency_run(tier), 0, -1)
            pipe.lrange(keys.latency_wait(tier, sla), 0, -1)
            run, wait = await pipe.execute()
        return estimate_of(_floats(run), _floats(wait), self.quantile)


def route_in_time(
    book: LatencyBook,
    client: redis.Redis,
    request: TaskRequest,
    doc: TaskResult,
    decision: RoutingDecision,
) -> str | None:
    """Move `decision` to the first tier that can answer in the time left,
    with the reason recorded; None when it fits (or has no deadline), else why nothing does."""
    left = time_left(request, doc)
    if left is None:
        return None
    tiers = candidates(decision.tier, decision.max_tier)
    guesses: dict[Tier, float | None] = {}

    def estimate(tier: Tier) -> float | None:
        guesses[tier] = book.estimate(client, tier, request.sla.klass)
        return guesses[tier]

    chosen = first_fitting(tiers, left, estimate)
    if chosen is None:
        seen = ", ".join(f"{t} ~{g:.1f}s" for t, g in guesses.items() if g is not None)
        return f"no tier can answer in the {max(left, 0):.1f}s left of deadline_s ({seen})"
    if chosen != decision.tier:
        decision.reasons.append(
            f"deadline: {decision.tier} (~{guesses[decision.tier]:.1f}s) cannot answer in the "
            f"{left:.1f}s left; {chosen} can"
        )
        decision.tier = chosen
    return None


def expire(
    store: TaskStore,
    doc: TaskResult,
    *,
    token: str,
    hop: int,
    stage: Stage,
    why: str,
    where: str,
    ttl_s: int,
) -> bool:
    """End a held task `expired` before any provider sees this hop; counted as `expired_<where>`."""
    results.end(doc, hop, TaskStatus.expired, ErrorInfo(type="expired", message=why[:1000]))
    committed = store.transition(doc, token=token, hop=hop, stage=stage, ttl_s=ttl_s)
    if committed:
        store.count("expired")
        store.count(f"expired_{where}")
    return bool(committed)
