"""Capability matching: hard constraints, the filter stage, the scored strategy, the submit check."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from parjanya.classify import PolicyRejection, classify
from parjanya.classify.scorer import HeuristicScorer
from parjanya.client import govern
from parjanya.config import Deployment, MatchingConfig, MatchWeights, ParjanyaConfig
from parjanya.governance.budgets import SpendLedger
from parjanya.governance.capabilities import (
    FilterStage,
    Needs,
    Scored,
    eligible,
    needs_for,
    requiring,
    unmet,
    unservable,
)
from parjanya.resilience.balance import Ordered, make_balancer
from parjanya.resilience.track import MemoryTrackStore
from parjanya.schema import TaskRequest
from tests.unit.tier_fakes import REQUEST, Scripted, dep, run


def _request(**fields: object) -> TaskRequest:
    return TaskRequest.model_validate({"prompt": "Rename tmp to total in cart.py", **fields})


def _needs(**fields: object) -> Needs:
    return Needs(**{"input_tokens": 100, "output_tokens": 100, **fields})  # type: ignore[arg-type]


def test_each_hard_constraint_names_why_a_deployment_is_out() -> None:
    d = dep("a", window=1_000, capabilities=["chat", "json"], residency="us", latency_s=2.0)
    assert unmet(d, _needs()) == []
    assert unmet(d, _needs(input_tokens=950)) == ["window 1000 < about 1050 tokens"]
    assert unmet(d, _needs(capabilities=frozenset({"vision", "json"}))) == ["lacks vision"]
    assert unmet(d, _needs(residency="eu")) == ["residency us is not eu"]
    assert "max_cost_usd" in unmet(d, _needs(max_cost_usd=1e-6))[0]
    assert "latency 2s > max_latency_s 1s" in unmet(d, _needs(max_latency_s=1.0))
    assert "declares no latency_s" in unmet(dep("b"), _needs(max_latency_s=1.0))[0]
    assert "not private" in unmet(d, _needs(private_only=True))[0]
    assert unmet(dep("p", private=True), _needs(private_only=True)) == []


def test_tools_and_json_mode_are_implied_by_the_request() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    needs = needs_for(_request(tools=tools, response_format="json"), 10)
    assert needs.capabilities == {"tools", "json"}
    assert needs_for(_request(constraints={"capabilities": ["vision"]}), 10).capabilities == {
        "vision"
    }
    assert eligible([dep("a"), dep("b", capabilities=["chat", "tools", "json"])], needs) == [
        dep("b", capabilities=["chat", "tools", "json"])
    ]


def test_the_filter_stage_hands_the_strategy_only_what_the_task_may_use() -> None:
    public, private = dep("public"), dep("private", private=True)
    stage = FilterStage(Ordered())
    assert asyncio.run(stage.order([public, private], REQUEST)) == [public, private]
    needs = _needs(input_tokens=1, output_tokens=1, private_only=True)
    with requiring(needs):
        assert asyncio.run(stage.order([public, private], REQUEST)) == [private]
        assert asyncio.run(stage.order([public], REQUEST)) == []
    assert "not private" in needs.excluded["public"]


def test_a_private_prompt_never_reaches_a_public_deployment_even_when_it_fails() -> None:
    public, private = dep("public"), dep("private", private=True)
    providers = Scripted()
    with requiring(_needs(input_tokens=1, output_tokens=1, private_only=True)):
        call = run([public, private], providers, balancer=FilterStage(Ordered()))
        assert call.deployment == private
        nothing = run([public], providers, balancer=FilterStage(Ordered()))
    assert not nothing.ok and providers.calls["public"] == 0


def test_scored_prefers_cheap_fast_good_by_the_configured_weights() -> None:
    cheap = dep("cheap", quality=0.2, latency_s=1.0).model_copy(
        update={"price_in_per_mtok": 0.1, "price_out_per_mtok": 0.1}
    )
    good = dep("good", quality=0.95, latency_s=1.0).model_copy(
        update={"price_in_per_mtok": 5.0, "price_out_per_mtok": 20.0}
    )
    stats = MemoryTrackStore()
    by_cost = Scored(MatchingConfig(weights=MatchWeights(cost=1, latency=0, quality=0)), stats)
    by_quality = Scored(MatchingConfig(weights=MatchWeights(cost=0, latency=0, quality=1)), stats)
    assert asyncio.run(by_cost.order([good, cheap], REQUEST)) == [cheap, good]
    assert asyncio.run(by_quality.order([cheap, good], REQUEST)) == [good, cheap]
    assert asyncio.run(by_cost.order([], REQUEST)) == []
    built = make_balancer("scored", stats=stats, capacity=None)
    assert isinstance(built, Scored)


def test_weights_must_not_all_be_zero() -> None:
    with pytest.raises(ValidationError):
        MatchWeights(cost=0, latency=0, quality=0)


def test_submit_refuses_what_no_deployment_can_serve_with_a_validation_error() -> None:
    config = ParjanyaConfig()
    assert unservable(_request(), config) is None
    problem = unservable(_request(constraints={"capabilities": ["vision"]}), config)
    assert problem is not None and "lacks vision" in problem and "sim-large" in problem
    assert unservable(_request(constraints={"residency": "eu"}), config) is not None
    assert unservable(_request(max_tier="low", constraints={"max_cost_usd": 1e-9}), config)
    ledger = SpendLedger(config.governance.budgets, sync=None)
    with pytest.raises(ValidationError) as raised:
        govern(_request(constraints={"capabilities": ["vision"]}), config, ledger)
    assert raised.value.errors()[0]["loc"] == ("constraints",)
    assert "lacks vision" in str(raised.value)


def test_the_classifier_moves_up_to_a_tier_that_meets_the_constraints() -> None:
    config = ParjanyaConfig()
    eu = Deployment.model_validate(
        {**config.tiers["mid"].deployments[0].model_dump(), "name": "eu-mid", "residency": "eu"}
    )
    config.tiers["mid"].deployments.append(eu)
    decision = classify(_request(constraints={"residency": "eu"}), config, HeuristicScorer())
    assert decision.tier == "mid" and decision.max_tier == "mid"
    assert any("hard constraints" in r for r in decision.reasons)
    with pytest.raises(PolicyRejection, match="residency"):
        classify(
            _request(constraints={"residency": "eu"}, min_tier="high"), config, HeuristicScorer()
        )


def test_constraints_are_bounded_and_strict() -> None:
    with pytest.raises(ValidationError):
        _request(constraints={"capabilities": ["x"] * 17})
    with pytest.raises(ValidationError):
        _request(constraints={"max_cost": 1.0})


class _Broken:
    async def order(self, deployments: object, request: object) -> list[Deployment]:
        raise RuntimeError("strategy bug")


def test_a_failing_strategy_still_gets_only_the_eligible_deployments() -> None:
    public, private = dep("public"), dep("private", private=True)
    with requiring(_needs(input_tokens=1, output_tokens=1, private_only=True)):
        assert asyncio.run(FilterStage(_Broken()).order([public, private], REQUEST)) == [private]


def test_the_filter_stage_leaves_windows_to_the_fallback_chain() -> None:
    small = dep("small", window=100)
    with requiring(_needs(input_tokens=5_000, output_tokens=100)):
        assert asyncio.run(FilterStage(Ordered()).order([small], REQUEST)) == [small]
    assert unservable(_request(context_tokens=10_000_000), ParjanyaConfig()) is None
