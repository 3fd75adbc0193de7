"""Consensus for high stakes (seed 003): a risky task is answered by several deployments at once.

Off by default (`governance.consensus.enabled`). A task whose risk dimension (0-10, recorded with
its complexity) is at least `min_risk` is answered by its tier as usual; then `answers - 1` more
deployments are asked the same question in parallel: the tier's other deployments first, then
those of the tiers above, never above the task's max tier and only those its hard constraints
allow (`capabilities.eligible`, so a private prompt stays private). Every extra call passes
through the same call chain, so it is rate limited, guarded by breakers, billed to the tenant,
capped by the task's budget and recorded in its history like any other attempt.

The answers are compared with `learn.agreement` (tool calls, stated final answers, else word
overlap). The share of the other answers that agree with the first is the *agreement*; when it
is below `min_agreement`, the answer's confidence is capped at that share, so a disagreement
escalates the task (or, at its top tier, flags it `low_confidence`), as any doubtful answer does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from parjanya.config import ConsensusConfig, Deployment, ParjanyaConfig
from parjanya.governance.capabilities import Needs, eligible
from parjanya.learn.agreement import AnswerText, agreement, tool_names
from parjanya.providers.base import ChatResponse
from parjanya.queues import TIERS, Tier, tier_rank
from parjanya.resilience.fallback import TierCall
from parjanya.schema import Complexity

__all__ = ["Consensus", "Review", "agreement_share", "capped", "panel"]

Ask = Callable[[Tier, Deployment], Awaitable[TierCall]]


@dataclass
class Review:
    """The extra answers (their calls, to record and bill) and how far they agreed."""

    calls: list[TierCall] = field(default_factory=list)
    share: float | None = None  # None: nothing to compare (consensus off, or no other answer)

    def note(self) -> str | None:
        if self.share is None:
            return None
        answered = sum(1 for c in self.calls if c.response is not None)
        return f"consensus: {answered} more answers, {self.share:.0%} agree with the first"


def panel(
    config: ParjanyaConfig,
    tier: Tier,
    max_tier: Tier,
    answered_by: str | None,
    needs: Needs | None,
    size: int,
) -> list[tuple[Tier, Deployment]]:
    """Up to `size` other deployments: the tier's own, then the tiers above up to `max_tier`."""
    chosen: list[tuple[Tier, Deployment]] = []
    for other in TIERS[tier_rank(tier) : tier_rank(max_tier) + 1]:
        deployments = config.tiers[other].deployments
        allowed = eligible(deployments, needs) if needs is not None else list(deployments)
        chosen.extend((other, d) for d in allowed if d.name != answered_by)
    return chosen[:size]


def _text(response: ChatResponse) -> AnswerText:
    return AnswerText(response.text, tool_names(response.tool_calls))


def agreement_share(first: ChatResponse, others: Sequence[ChatResponse]) -> float | None:
    """The share of `others` that agree with `first` (None when there are none)."""
    if not others:
        return None
    agreeing = sum(agreement(_text(o), _text(first)).quality >= 1.0 for o in others)
    return agreeing / len(others)


def capped(confidence: float | None, share: float | None, min_agreement: float) -> float | None:
    """The confidence after the review: capped at the agreement share when that falls short."""
    if confidence is None or share is None or share >= min_agreement:
        return confidence
    return min(confidence, share)


class Consensus:
    """Decides once, from config, whether and how widely a task's answer is reviewed."""

    def __init__(self, config: ConsensusConfig) -> None:
        self.config = config

    def applies(self, complexity: Complexity | None) -> bool:
        return (
            self.config.enabled
            and complexity is not None
            and complexity.dimensions.risk >= self.config.min_risk
        )

    async def review(
        self, call: TierCall, others: Sequence[tuple[Tier, Deployment]], ask: Ask
    ) -> Review:
        """Ask `others` in parallel and compare their answers with `call`'s."""
        if call.response is None or not others:
            return Review()
        calls = list(await asyncio.gather(*(ask(tier, d) for tier, d in others)))
        answers = [c.response for c in calls if c.response is not None]
        return Review(calls=calls, share=agreement_share(call.response, answers))

    def confidence(self, confidence: float | None, review: Review) -> float | None:
        return capped(confidence, review.share, self.config.min_agreement)
