"""Policy: score -> tier, then request bounds, SLA, context window and budget, with reasons."""

from __future__ import annotations

from typing import Any

import pytest

from parjanya.classify import PolicyRejection, classify
from parjanya.classify.features import TextFeatures
from parjanya.classify.policy import RULES, complexity_score, tier_for_score
from parjanya.config import ParjanyaConfig, RoutingConfig, Thresholds, Weights
from parjanya.schema import DimensionScores, Sla, TaskRequest


class FixedScorer:
    """A scorer that ignores the text: lets a test pick the complexity directly."""

    name = "fixed"

    def __init__(self, **dimensions: float) -> None:
        base = dict.fromkeys(("structural", "cognitive", "context", "ambiguity", "risk"), 0.0)
        self.scores = DimensionScores(**{**base, **dimensions})

    def assess(self, text: str, features: TextFeatures) -> tuple[DimensionScores, float]:
        return self.scores, complexity_score(self.scores, Weights())


def uniform(value: float) -> FixedScorer:
    """Every dimension at `value`: the weighted sum is `value` whatever the weights."""
    return FixedScorer(
        structural=value, cognitive=value, context=value, ambiguity=value, risk=value
    )


LOW, MID, HIGH = uniform(1.0), uniform(4.0), uniform(8.0)  # scores 1.9, 4.6, 8.2


def request(**fields: Any) -> TaskRequest:
    return TaskRequest(prompt=fields.pop("prompt", "Summarise the attached notes."), **fields)


@pytest.fixture
def config() -> ParjanyaConfig:
    return ParjanyaConfig(routing=RoutingConfig(scorer="heuristic"))


def test_score_maps_the_weighted_sum_affinely_onto_1_to_10() -> None:
    weights = Weights()
    assert complexity_score(uniform(0).scores, weights) == 1.0
    assert complexity_score(uniform(10).scores, weights) == 10.0
    assert complexity_score(uniform(5).scores, weights) == pytest.approx(5.5)


def test_weights_from_config_change_the_score() -> None:
    dims = FixedScorer(structural=10.0).scores
    default = complexity_score(dims, Weights())
    structural_heavy = complexity_score(
        dims, Weights(structural=0.6, cognitive=0.1, context=0.1, ambiguity=0.1, risk=0.1)
    )
    assert default == pytest.approx(1 + 0.9 * 2.5)
    assert structural_heavy == pytest.approx(1 + 0.9 * 6.0)


def test_weights_from_config_reach_classify(config: ParjanyaConfig) -> None:
    risk_heavy = config.model_copy(deep=True)
    risk_heavy.routing.weights = Weights(
        structural=0.1, cognitive=0.1, context=0.1, ambiguity=0.1, risk=0.6
    )
    risky = request(
        prompt="Delete the duplicate payment rows from the production ledger; the audit is due."
    )
    plain, heavy = classify(risky, config), classify(risky, risk_heavy)
    assert plain.complexity.dimensions == heavy.complexity.dimensions
    assert plain.complexity.dimensions.risk > plain.complexity.dimensions.structural
    assert heavy.complexity.score > plain.complexity.score


@pytest.mark.parametrize(
    ("score", "tier"), [(1.0, "low"), (3.5, "low"), (3.51, "mid"), (6.5, "mid"), (6.51, "high")]
)
def test_thresholds_pick_the_lowest_tier_that_covers_the_score(score: float, tier: str) -> None:
    assert tier_for_score(score, Thresholds()) == tier


def test_thresholds_come_from_config(config: ParjanyaConfig) -> None:
    assert classify(request(), config, MID).tier == "mid"
    config.routing.thresholds = Thresholds(low=5.0, mid=9.0)
    assert classify(request(), config, MID).tier == "low"


def test_the_first_reason_explains_the_score(config: ParjanyaConfig) -> None:
    decision = classify(request(), config, MID)
    assert decision.reasons[0].startswith("complexity 4.60 -> mid")
    assert decision.complexity.scorer == "fixed"


def test_request_min_tier_raises_and_max_tier_lowers(config: ParjanyaConfig) -> None:
    raised = classify(request(min_tier="high"), config, LOW)
    lowered = classify(request(max_tier="low"), config, HIGH)
    assert raised.tier == "high" and "min_tier=high" in raised.reasons[-1]
    assert lowered.tier == "low" and lowered.max_tier == "low"
    assert "max_tier=low" in lowered.reasons[-1]


def test_max_tier_bounds_escalation_even_when_the_route_is_lower(config: ParjanyaConfig) -> None:
    decision = classify(request(max_tier="mid"), config, LOW)
    assert (decision.tier, decision.max_tier) == ("low", "mid")


def test_critical_sla_means_at_least_mid(config: ParjanyaConfig) -> None:
    decision = classify(request(sla=Sla.critical), config, LOW)
    assert decision.tier == "mid"
    assert any("SLA critical" in reason for reason in decision.reasons)
    assert classify(request(sla=Sla.critical), config, HIGH).tier == "high"


def test_an_explicit_max_tier_wins_over_the_sla_minimum(config: ParjanyaConfig) -> None:
    decision = classify(request(sla=Sla.critical, max_tier="low"), config, LOW)
    assert decision.tier == "low"
    assert any("max_tier=low wins" in reason for reason in decision.reasons)


def test_sla_max_tier_caps_the_route(config: ParjanyaConfig) -> None:
    config.routing.sla["batch"].max_tier = "mid"
    decision = classify(request(sla=Sla.batch), config, HIGH)
    assert (decision.tier, decision.max_tier) == ("mid", "mid")


def test_a_big_context_moves_up_to_the_lowest_tier_that_fits(config: ParjanyaConfig) -> None:
    # low's window is 16k, mid's 64k: 30k of attached context needs mid even for an easy task
    decision = classify(request(context_tokens=30_000), config, LOW)
    assert decision.tier == "mid"
    assert decision.estimated_input_tokens >= 30_000
    assert any("context window" in reason for reason in decision.reasons)
    assert classify(request(context_tokens=100_000), config, LOW).tier == "high"


def test_output_tokens_count_against_the_window(config: ParjanyaConfig) -> None:
    assert classify(request(context_tokens=14_000), config, LOW).tier == "low"
    assert (
        classify(request(context_tokens=14_000, max_output_tokens=4_000), config, LOW).tier == "mid"
    )


def test_context_larger_than_every_window_is_rejected(config: ParjanyaConfig) -> None:
    with pytest.raises(PolicyRejection, match="exceed every deployment's context window"):
        classify(request(context_tokens=250_000), config, LOW)


def test_context_that_only_fits_above_max_tier_is_rejected(config: ParjanyaConfig) -> None:
    with pytest.raises(PolicyRejection, match="at most low"):
        classify(request(context_tokens=30_000, max_tier="low"), config, LOW)


def test_budget_lowers_the_tier_to_the_most_capable_affordable_one(config: ParjanyaConfig) -> None:
    # ~10k input + 512 output tokens: low ~$0.0018, mid ~$0.012, high ~$0.06
    decision = classify(request(context_tokens=10_000, budget_usd=0.02), config, HIGH)
    assert (decision.tier, decision.max_tier) == ("mid", "mid")
    assert any("budget" in reason for reason in decision.reasons)


def test_budget_caps_escalation_without_moving_a_cheap_route(config: ParjanyaConfig) -> None:
    decision = classify(request(context_tokens=10_000, budget_usd=0.005), config, LOW)
    assert (decision.tier, decision.max_tier) == ("low", "low")


def test_budget_never_drops_below_the_minimum_tier(config: ParjanyaConfig) -> None:
    with pytest.raises(PolicyRejection, match="budget"):
        classify(request(context_tokens=10_000, budget_usd=0.005, min_tier="mid"), config, HIGH)


def test_a_budget_too_small_for_every_tier_is_rejected_with_the_reason(
    config: ParjanyaConfig,
) -> None:
    with pytest.raises(PolicyRejection) as raised:
        classify(request(budget_usd=0.0), config, LOW)
    assert "cheapest: low" in str(raised.value)


def test_budget_respects_the_context_floor(config: ParjanyaConfig) -> None:
    # 30k tokens need mid's window; a budget that only covers low cannot route it anywhere
    with pytest.raises(PolicyRejection):
        classify(request(context_tokens=30_000, budget_usd=0.006), config, HIGH)


def test_rules_run_in_the_documented_order() -> None:
    names = [rule.__name__ for rule in RULES]
    assert names == ["request_bounds", "sla_policy", "context_window", "budget", "matching"]


def test_pii_is_recorded_and_noted(config: ParjanyaConfig) -> None:
    decision = classify(request(prompt="Email the report to ana@example.com"), config)
    assert decision.complexity.pii == ["email"]
    assert "contains email" in decision.reasons[-1]
