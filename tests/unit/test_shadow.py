"""Shadow runs, the pure part: which tasks are sampled, on which tier, and the agreement rule."""

from __future__ import annotations

import asyncio

import pytest

from parjanya.learn.agreement import AnswerText, agreement, final_answer, normalise
from parjanya.learn.shadow import (
    AgreementComparator,
    make_comparator,
    sampled,
    shadow_request,
    shadow_tier,
)
from parjanya.schema import TaskRequest

# --- sampling -----------------------------------------------------------------------------------


def test_sampling_is_a_fixed_function_of_the_task_id() -> None:
    ids = [f"task-{i}" for i in range(2000)]
    first = [sampled(i, 0.25) for i in ids]
    assert first == [sampled(i, 0.25) for i in ids]  # every worker decides alike
    assert 0.22 < sum(first) / len(ids) < 0.28
    assert first != [sampled(i, 0.25, seed="other") for i in ids]  # a seed draws another sample


def test_sampling_is_monotone_in_the_rate_and_exact_at_the_ends() -> None:
    ids = [f"t{i}" for i in range(500)]
    assert not any(sampled(i, 0.0) for i in ids)
    assert all(sampled(i, 1.0) for i in ids)
    at_10 = {i for i in ids if sampled(i, 0.10)}
    at_50 = {i for i in ids if sampled(i, 0.50)}
    assert at_10 < at_50  # raising the rate only adds tasks


def test_a_shadow_runs_one_tier_up_never_above_the_tasks_max_tier() -> None:
    assert shadow_tier("low", "high") == "mid"
    assert shadow_tier("mid", "high") == "high"
    assert shadow_tier("high", "high") is None
    assert shadow_tier("low", "low") is None
    assert shadow_tier("mid", "mid") is None


def test_the_shadow_request_is_pinned_and_owes_the_caller_nothing() -> None:
    original = TaskRequest(
        prompt="Rename tmp to total.", idempotency_key="k-1", budget_usd=0.001, max_tier="high"
    )
    shadow = shadow_request(original, "mid")
    assert (shadow.min_tier, shadow.max_tier) == ("mid", "mid")
    assert shadow.idempotency_key is None and shadow.budget_usd is None
    assert shadow.prompt == original.prompt
    assert original.idempotency_key == "k-1"  # the caller's request is not touched


# --- the agreement rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "stated"),
    [
        ("Steps... Final answer: 42.", "42"),
        ("The final answer is (B). Done", "(B)"),
        ("so $\\boxed{17}$ and final answer: 3", "17"),
        ("Working\nAnswer: Paris\nthanks", "Paris"),
        ("first final answer: 1. Then final answer = 2", "2"),
        ("No label here.", None),
    ],
)
def test_final_answer_is_the_last_stated_one(text: str, stated: str | None) -> None:
    assert final_answer(text) == stated


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("(B)", "b."),
        ("1,000.50", "1000.5"),
        ("**Paris**", "paris"),
        ('"yes"', "Yes!"),
        ("3.0", "3"),
    ],
)
def test_normalising_removes_formatting_only(a: str, b: str) -> None:
    assert normalise(a) == normalise(b)


def test_normalising_keeps_different_answers_apart() -> None:
    assert normalise("(B)") != normalise("(C)")
    assert normalise("1000") != normalise("100")
    assert normalise("Paris, France") != normalise("Paris")


def test_final_answers_decide_when_both_state_one() -> None:
    agree = agreement(
        AnswerText("Long reasoning A. Final answer: (b)."),
        AnswerText("Completely different words. The final answer is B"),
    )
    assert (agree.quality, agree.rule) == (1.0, "final_answer")
    differ = agreement(
        AnswerText("Same words here. Final answer: 12."),
        AnswerText("Same words here. Final answer: 13."),
    )
    assert (differ.quality, differ.rule) == (0.0, "final_answer")


def test_without_final_answers_the_words_must_mostly_match() -> None:
    base = "the cache key is the hash of model messages and parameters"
    close = agreement(AnswerText(base), AnswerText(base.upper() + "!"))
    assert (close.quality, close.rule) == (1.0, "text")
    far = agreement(AnswerText(base), AnswerText("the key is a random uuid per request"))
    assert (far.quality, far.rule) == (0.0, "text")


def test_tool_calls_agree_by_name_and_order() -> None:
    same = agreement(AnswerText("", ("search", "fetch")), AnswerText("x", ("search", "fetch")))
    assert (same.quality, same.rule) == (1.0, "tool_calls")
    swapped = agreement(AnswerText("", ("fetch", "search")), AnswerText("", ("search", "fetch")))
    assert swapped.quality == 0.0
    words_only = agreement(AnswerText("Final answer: 3."), AnswerText("", ("search",)))
    assert (words_only.quality, words_only.rule) == (0.0, "tool_calls")


def test_the_default_comparator_is_agreement() -> None:
    comparator = make_comparator(None)
    assert isinstance(comparator, AgreementComparator) and comparator.name == "agreement"
    verdict = asyncio.run(
        comparator.compare("q", AnswerText("Final answer: 4."), AnswerText("Final answer: 5."))
    )
    assert verdict.quality == 0.0
