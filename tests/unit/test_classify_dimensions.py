"""The five dimensions: they stay in range and move the right way as the request changes."""

from __future__ import annotations

import pytest

from parjanya.classify import HeuristicScorer, Scorer, build_scorer, classify
from parjanya.classify.curves import Curve, curve
from parjanya.classify.dimensions import CALIBRATION, FeatureScorer, explain
from parjanya.classify.features import measure_text
from parjanya.config import ParjanyaConfig, RoutingConfig
from parjanya.schema import DimensionScores, Sla, TaskRequest

ONE_LINER = "Fix the typo in README.md."
MULTI_STEP = (
    "Plan the migration of the billing service from MySQL to PostgreSQL.\n"
    "1. Inventory the tables and their write paths.\n"
    "2. Design a dual-write phase; if writes diverge, explain how to reconcile them.\n"
    "3. Define the backfill and how to verify consistency before switching reads.\n"
    "4. Describe the rollback at every phase.\n"
    "Which step carries the most risk, and why? What would you monitor?"
)


def dims(text: str, **hints: object) -> DimensionScores:
    return FeatureScorer().dimensions(measure_text(text, **hints))  # type: ignore[arg-type]


def test_both_scorers_satisfy_the_protocol_and_are_chosen_by_config() -> None:
    heuristic = build_scorer(RoutingConfig(scorer="heuristic"))
    learned = build_scorer(RoutingConfig())
    assert isinstance(heuristic, HeuristicScorer) and heuristic.name == "features-v1"
    assert isinstance(learned, Scorer) and learned.name == "difficulty-mmlu-v1"


def test_the_heuristic_score_is_the_weighted_sum_of_the_dimensions() -> None:
    config = ParjanyaConfig(routing=RoutingConfig(scorer="heuristic"))
    decision = classify(TaskRequest(prompt=MULTI_STEP), config)
    d = decision.complexity.dimensions
    weighted = 0.25 * d.structural + 0.25 * d.cognitive + 0.2 * d.context
    weighted += 0.15 * d.ambiguity + 0.15 * d.risk
    assert decision.complexity.score == pytest.approx(1 + 0.9 * weighted, abs=0.01)
    assert decision.complexity.scorer == "features-v1"


@pytest.mark.parametrize(
    "text",
    ["", "?", ONE_LINER, MULTI_STEP, MULTI_STEP * 40, "maybe " * 500, "why? " * 300, "∑" * 1000],
)
def test_every_dimension_stays_between_0_and_10(text: str) -> None:
    scores = dims(text, context_tokens=10**6, sla=Sla.critical, wants_json=True)
    for value in scores.model_dump().values():
        assert 0.0 <= value <= 10.0


def test_a_multi_step_plan_is_more_structured_and_harder_than_a_one_liner() -> None:
    small, big = dims(ONE_LINER), dims(MULTI_STEP)
    assert big.structural >= small.structural + 4
    assert big.cognitive >= small.cognitive + 3
    assert small.structural <= 1 and small.cognitive <= 1


def test_more_steps_never_lower_structure() -> None:
    steps = [f"{i}. Update module_{i} and its tests." for i in range(1, 13)]
    values = [dims("\n".join(steps[:n])).structural for n in range(1, 13)]
    assert values == sorted(values)
    assert values[-1] > values[0] + 3


@pytest.mark.parametrize(
    ("tokens", "low", "high"),
    [(100, 0.0, 1.0), (2_000, 3.5, 4.5), (20_000, 6.5, 7.5), (100_000, 9.5, 10.0)],
)
def test_context_follows_the_log_scale_anchors(tokens: int, low: float, high: float) -> None:
    assert low <= dims("Summarise.", context_tokens=tokens).context <= high


def test_vague_open_requests_are_more_ambiguous_than_precise_ones() -> None:
    vague = dims("Make the app better somehow, maybe improve the stuff that feels slow etc.")
    precise = dims("Rename `usr_cnt` to `user_count` in src/stats/report.py line 42.")
    assert vague.ambiguity >= precise.ambiguity + 4


def test_risk_rises_with_sla_domain_destructive_ops_and_pii() -> None:
    plain = dims("Update the footer text.")
    critical = dims("Update the footer text.", sla=Sla.critical)
    risky = dims(
        "Delete the duplicate payment rows from the production ledger for customer "
        "ana@example.com; the audit is due and data loss is not acceptable."
    )
    assert plain.risk == 0
    assert critical.risk >= 3
    assert risky.risk >= 6


def test_reasoning_demands_raise_cognitive() -> None:
    plain = dims("Write a function that adds two numbers.")
    hard = dims(
        "Prove the algorithm terminates, derive its worst case complexity, and explain why "
        "the invariant holds; compare it with the alternatives and justify the trade-offs."
    )
    assert hard.cognitive >= plain.cognitive + 5


def test_explain_breaks_a_score_down_by_term() -> None:
    breakdown = explain(measure_text(MULTI_STEP))
    assert set(breakdown) == {"structural", "cognitive", "context", "ambiguity", "risk"}
    assert breakdown["structural"]["steps"] > 0
    assert sum(breakdown["structural"].values()) == pytest.approx(dims(MULTI_STEP).structural, 0.05)


def test_every_dimension_has_terms_worth_at_least_ten_points() -> None:
    for dimension, terms in CALIBRATION.items():
        assert sum(term.points for term in terms) >= 10, dimension


def test_a_custom_calibration_changes_the_scores() -> None:
    flat = {name: () for name in CALIBRATION}
    assert FeatureScorer(flat).dimensions(measure_text(MULTI_STEP)).structural == 0


def test_curves_interpolate_and_clamp() -> None:
    ramp = curve((0, 0), (10, 1), (20, 0.5))
    assert ramp(-5) == 0 and ramp(5) == 0.5 and ramp(15) == 0.75 and ramp(99) == 0.5
    with pytest.raises(ValueError):
        Curve(((1, 0), (1, 1)))


def test_classify_is_deterministic() -> None:
    config = ParjanyaConfig()
    request = TaskRequest(prompt=MULTI_STEP, context_tokens=3_000)
    decisions = {classify(request, config).model_dump_json() for _ in range(5)}
    assert len(decisions) == 1
