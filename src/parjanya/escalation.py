"""What to do once a tier has answered (or failed): finish, move up a tier, or give up.

A pure function of the outcome and the policy, so every branch is unit-tested without a broker.
Two reasons to move up are kept apart: a *weak answer* (confidence below the tier's threshold) uses
the escalation budget (`max_escalations`, once by default); a *failed tier* (every deployment and
retry exhausted) fails over to the next tier whatever that budget, because "every tier it may use"
must be tried before a task is dead-lettered. Neither goes above the routing decision's max tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from parjanya.queues import Tier, next_tier, tier_rank


@dataclass(frozen=True)
class Finish:
    low_confidence: bool  # True: the best answer we could get, flagged, never dropped


@dataclass(frozen=True)
class Escalate:
    to: Tier
    reason: Literal["low_confidence", "failover"]


@dataclass(frozen=True)
class GiveUp:
    reason: str


Decision = Finish | Escalate | GiveUp


def _higher(tier: Tier, max_tier: Tier) -> Tier | None:
    candidate = next_tier(tier)
    if candidate is None or tier_rank(candidate) > tier_rank(max_tier):
        return None
    return candidate


def decide(
    *,
    tier: Tier,
    answered: bool,
    confidence: float | None,
    threshold: float,
    escalations: int,
    max_escalations: int,
    max_tier: Tier,
) -> Decision:
    higher = _higher(tier, max_tier)
    if not answered:
        if higher is not None:
            return Escalate(higher, "failover")
        return GiveUp(f"every deployment of every allowed tier up to {tier!r} failed")
    if confidence is None or confidence >= threshold:
        return Finish(low_confidence=False)
    if higher is not None and escalations < max_escalations:
        return Escalate(higher, "low_confidence")
    return Finish(low_confidence=True)
