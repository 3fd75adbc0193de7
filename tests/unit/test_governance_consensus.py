"""Consensus: who else answers a risky task, and how disagreement lowers the confidence."""

from __future__ import annotations

import asyncio

from parjanya.config import ConsensusConfig, Deployment, ParjanyaConfig
from parjanya.governance.capabilities import Needs
from parjanya.governance.consensus import Consensus, Review, agreement_share, capped, panel
from parjanya.queues import Tier
from parjanya.resilience.fallback import TierCall
from parjanya.schema import Complexity, DimensionScores
from tests.unit.tier_fakes import answer, dep


def _complexity(risk: float) -> Complexity:
    dims = DimensionScores(structural=1, cognitive=1, context=1, ambiguity=1, risk=risk)
    return Complexity(score=5, dimensions=dims, domain="general")


def test_consensus_is_off_by_default_and_applies_from_the_configured_risk() -> None:
    assert not Consensus(ConsensusConfig()).applies(_complexity(10))
    on = Consensus(ConsensusConfig(enabled=True, min_risk=7))
    assert on.applies(_complexity(7)) and not on.applies(_complexity(6.9))
    assert not on.applies(None)


def test_the_panel_takes_the_tier_first_then_the_tiers_above_within_the_constraints() -> None:
    config = ParjanyaConfig()
    extra = Deployment.model_validate(
        {**config.tiers["mid"].deployments[0].model_dump(), "name": "mid-2"}
    )
    config.tiers["mid"].deployments.append(extra)
    chosen = panel(config, "mid", "high", "sim-medium", None, 2)
    assert [(t, d.name) for t, d in chosen] == [("mid", "mid-2"), ("high", "sim-large")]
    assert [d.name for _, d in panel(config, "mid", "mid", "sim-medium", None, 5)] == ["mid-2"]
    private = Needs(input_tokens=1, output_tokens=1, private_only=True)
    assert panel(config, "mid", "high", "sim-medium", private, 5) == []


def test_agreement_share_and_the_confidence_cap() -> None:
    first = answer("a", "The final answer is 42.")
    assert agreement_share(first, [answer("b", "Final answer: 42")]) == 1.0
    assert (
        agreement_share(first, [answer("b", "Final answer: 42"), answer("c", "final answer: 7")])
        == 0.5
    )
    assert agreement_share(first, []) is None
    assert capped(0.9, 0.5, 1.0) == 0.5
    assert capped(0.9, 1.0, 1.0) == 0.9
    assert capped(0.3, 0.5, 1.0) == 0.3
    assert capped(None, 0.0, 1.0) is None and capped(0.9, None, 1.0) == 0.9


def test_review_asks_the_panel_in_parallel_and_disagreement_lowers_confidence() -> None:
    asked: list[str] = []

    async def ask(tier: Tier, deployment: Deployment) -> TierCall:
        asked.append(deployment.name)
        await asyncio.sleep(0)
        return TierCall(response=answer(deployment.name, "final answer: 7"), deployment=deployment)

    consensus = Consensus(ConsensusConfig(enabled=True))
    first = TierCall(response=answer("a", "final answer: 42"), deployment=dep("a"))
    review = asyncio.run(consensus.review(first, [("mid", dep("b")), ("high", dep("c"))], ask))
    assert sorted(asked) == ["b", "c"] and review.share == 0.0
    assert consensus.confidence(0.95, review) == 0.0
    assert review.note() == "consensus: 2 more answers, 0% agree with the first"
    nothing = asyncio.run(consensus.review(TierCall(), [("mid", dep("b"))], ask))
    assert nothing == Review() and consensus.confidence(0.8, nothing) == 0.8
