"""Shadow runs: which answered tasks are asked again one tier up, and how the answers are compared.

A task answered on a lower tier says nothing about whether a higher tier would have done better;
escalation only sees the answers the confidence check doubted. So a share (`routing.shadow_rate`)
of answered tasks is run again on the next tier up, as a task of its own (`shadow_request`), and
the two answers are compared. The caller never waits for it and never sees it: its result is the
original answer. The comparison is the only unbiased label of "this prompt needs the stronger
tier" that production offers, since the sample does not depend on what the router or the
confidence check thought.

Pure decisions only: the worker side that starts shadows and files verdicts is
`worker/learning.py`.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from parjanya.learn.agreement import AnswerText, Comparison, agreement
from parjanya.learn.judging import JudgeComparator
from parjanya.providers.base import Provider
from parjanya.queues import Tier, next_tier, tier_rank
from parjanya.schema import TaskRequest

__all__ = [
    "AgreementComparator",
    "Comparator",
    "make_comparator",
    "sampled",
    "shadow_request",
    "shadow_tier",
]


def sampled(task_id: str, rate: float, *, seed: str = "") -> bool:
    """Is this task shadowed? A fixed function of the task id (and seed), so every worker, and a
    rerun of the same decision, agrees; over many ids, true for a `rate` share of them."""
    if rate <= 0.0:
        return False
    if rate >= 1.0:
        return True
    digest = hashlib.sha256(f"shadow\0{seed}\0{task_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def shadow_tier(answered_on: Tier, max_tier: Tier) -> Tier | None:
    """The tier a shadow runs on: the next one up, never above the task's own max tier (a caller
    who capped the tier may have a reason, such as where its data may go)."""
    higher = next_tier(answered_on)
    if higher is None or tier_rank(higher) > tier_rank(max_tier):
        return None
    return higher


def shadow_request(request: TaskRequest, tier: Tier) -> TaskRequest:
    """The same request, pinned to `tier`: no idempotency key (it is a task of its own) and no
    budget (the shadow is the operator's experiment; its cost is recorded, not the caller's cap)."""
    return request.model_copy(
        update={"min_tier": tier, "max_tier": tier, "idempotency_key": None, "budget_usd": None}
    )


class Comparator(Protocol):
    """How good the lower tier's answer was, taking the higher tier's answer as right."""

    @property
    def name(self) -> str: ...

    async def compare(self, prompt: str, lower: AnswerText, higher: AnswerText) -> Comparison: ...


class AgreementComparator:
    """The default: agreement of final answers or texts (`learn/agreement.py` states the rule)."""

    name = "agreement"

    async def compare(self, prompt: str, lower: AnswerText, higher: AnswerText) -> Comparison:
        return agreement(lower, higher)


def make_comparator(judge: Provider | None) -> Comparator:
    """The comparator the config asks for: agreement, or the judge deployment named by
    `routing.shadow_judge` (`learn/judging.py`), given here as the provider that calls it."""
    return AgreementComparator() if judge is None else JudgeComparator(judge)
