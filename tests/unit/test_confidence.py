"""Confidence checkers: token certainty, answer signals, and how the default combines them."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from pydantic import ValidationError

from parjanya.confidence import (
    DEFAULT_SIGNALS,
    AnswerSignalConfidence,
    AsyncConfidenceChecker,
    Confidence,
    ConfidenceChecker,
    DefaultConfidence,
    LogprobConfidence,
    Signal,
    Sync,
    answer_confidence,
    as_async,
)
from parjanya.providers import ChatRequest, ChatResponse
from parjanya.schema import ChatMessage, ToolCall

THRESHOLD = 0.7  # the default tier confidence_threshold
TEXT = ChatRequest(messages=[ChatMessage(role="user", content="Capital of France?")])
JSON = TEXT.model_copy(update={"response_format": "json"})
CONFIDENT = [-0.01, -0.03, -0.02, -0.05, -0.01, -0.04, -0.02, -0.01, -0.03, -0.02]
UNSURE = [-1.2, -2.0, -0.9, -1.6, -2.3, -1.1, -1.8, -1.4, -2.5, -1.0]


def answer(text: str = "Paris.", **fields: Any) -> ChatResponse:
    return ChatResponse(text=text, model="m", deployment="d", **{"finish_reason": "stop", **fields})


def value(checker: ConfidenceChecker, response: ChatResponse, request: ChatRequest = TEXT) -> float:
    return checker.check(request, response).value


# --- logprobs ----------------------------------------------------------------------------------


def test_confident_tokens_give_high_confidence() -> None:
    result = LogprobConfidence().check(TEXT, answer(logprobs=CONFIDENT))
    assert result.value > 0.95
    assert result.signals[0].startswith("logprobs:")


def test_unsure_tokens_give_low_confidence() -> None:
    assert value(LogprobConfidence(), answer(logprobs=UNSURE)) < 0.3


def test_a_few_weak_tokens_pull_a_fluent_answer_down() -> None:
    fluent = [-0.01] * 95
    one_shaky_fact = fluent + [-3.0] * 5
    mean_only = math.exp(sum(one_shaky_fact) / len(one_shaky_fact))
    checked = value(LogprobConfidence(), answer(logprobs=one_shaky_fact))
    assert checked < mean_only
    assert checked < value(LogprobConfidence(), answer(logprobs=fluent))


def test_without_logprobs_the_logprob_checker_says_so() -> None:
    result = LogprobConfidence(missing=0.4).check(TEXT, answer())
    assert result == Confidence(value=0.4, signals=("logprobs: none returned",))


# --- answer signals ----------------------------------------------------------------------------


def test_clean_answer_has_no_signals() -> None:
    assert AnswerSignalConfidence().check(TEXT, answer()) == Confidence(value=1.0)


@pytest.mark.parametrize("text", ["", "   \n "])
def test_empty_output_is_zero(text: str) -> None:
    result = AnswerSignalConfidence().check(TEXT, answer(text))
    assert result.value == 0.0
    assert any(s.startswith("empty") for s in result.signals)


def test_a_tool_call_without_text_is_an_answer_not_an_empty_one() -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
    result = DefaultConfidence().check(TEXT, answer("", tool_calls=[call]))
    assert result == Confidence(value=0.9, signals=("logprobs: none, prior 0.9",))


def test_truncated_output_is_penalised() -> None:
    result = AnswerSignalConfidence().check(TEXT, answer(finish_reason="length"))
    assert result.value == 0.5
    assert result.signals[0].startswith("truncated")


@pytest.mark.parametrize(
    "text",
    [
        "I can't help with that request.",
        "I cannot provide medical advice.",
        "I\u2019m unable to do that.",
        "I'm sorry, but that is not something I do.",
    ],
)
def test_refusals_are_penalised(text: str) -> None:
    result = AnswerSignalConfidence().check(TEXT, answer(text))
    assert result.value <= 0.3
    assert result.signals[0].startswith("refusal")


def test_cannot_deep_inside_a_long_answer_is_not_a_refusal() -> None:
    text = "Paris is the capital. " * 20 + "I cannot stress this enough: it is Paris."
    assert value(AnswerSignalConfidence(), answer(text)) == 1.0


@pytest.mark.parametrize(
    "text",
    ["I'm not sure, Paris?", "I am not certain it is Paris.", "I don't know."],
)
def test_saying_it_does_not_know_is_penalised(text: str) -> None:
    assert value(AnswerSignalConfidence(), answer(text)) <= 0.5


def test_soft_hedges_add_up_to_a_floor() -> None:
    checker = AnswerSignalConfidence()
    one = value(checker, answer("It might be Paris."))
    two = value(checker, answer("It might be Paris, possibly Lyon."))
    many = value(checker, answer("Perhaps. " * 10 + "It might be Paris, possibly."))
    assert 1.0 > one > two > many
    assert many == pytest.approx(0.85**4)


def test_invalid_json_is_near_zero_when_json_was_asked() -> None:
    result = AnswerSignalConfidence().check(JSON, answer('{"capital": "Paris"'))
    assert result.value <= 0.1
    assert result.signals[0].startswith("invalid_json")
    assert value(AnswerSignalConfidence(), answer('{"capital": "Paris"}'), JSON) == 1.0
    assert value(AnswerSignalConfidence(), answer("Paris, not JSON"), TEXT) == 1.0


def test_signals_are_a_pluggable_list() -> None:
    def shouting(request: ChatRequest, response: ChatResponse) -> list[str]:
        return ["all caps"] if response.text.isupper() else []

    checker = AnswerSignalConfidence(signals=(*DEFAULT_SIGNALS, Signal("shouting", 0.5, shouting)))
    result = checker.check(TEXT, answer("PARIS!"))
    assert result.value == 0.5
    assert result.signals == ("shouting: all caps (x0.5)",)


# --- the default -------------------------------------------------------------------------------


def test_default_uses_logprobs_when_present() -> None:
    checker = DefaultConfidence()
    assert value(checker, answer(logprobs=CONFIDENT)) >= THRESHOLD
    assert value(checker, answer(logprobs=UNSURE)) < THRESHOLD


def test_default_uses_a_passing_prior_without_logprobs() -> None:
    result = DefaultConfidence().check(TEXT, answer())
    assert result.value == 0.9 >= THRESHOLD
    assert result.signals == ("logprobs: none, prior 0.9",)


@pytest.mark.parametrize(
    ("response", "request_"),
    [
        (answer(finish_reason="length", logprobs=CONFIDENT), TEXT),
        (answer("", logprobs=CONFIDENT), TEXT),
        (answer("I'm not sure. It might be Paris.", logprobs=CONFIDENT), TEXT),
        (answer("I can't help with that.", logprobs=CONFIDENT), TEXT),
        (answer("{'capital': 'Paris'}", logprobs=CONFIDENT), JSON),
        (answer(finish_reason="length"), TEXT),
    ],
)
def test_answer_signals_apply_even_with_confident_tokens(
    response: ChatResponse, request_: ChatRequest
) -> None:
    assert value(DefaultConfidence(), response, request_) < THRESHOLD


def test_default_is_the_product_of_its_parts_with_all_reasons() -> None:
    response = answer("It might be Paris.", logprobs=CONFIDENT)
    tokens = LogprobConfidence().check(TEXT, response)
    signals = AnswerSignalConfidence().check(TEXT, response)
    combined = DefaultConfidence().check(TEXT, response)
    assert combined.value == pytest.approx(tokens.value * signals.value)
    assert combined.signals == tokens.signals + signals.signals


def test_a_learned_checker_plugs_in_through_the_protocol() -> None:
    class Learned:
        def check(self, request: ChatRequest, response: ChatResponse) -> Confidence:
            return Confidence(value=0.6, signals=("learned: v1",))

    checker: ConfidenceChecker = DefaultConfidence(tokens=Learned())
    assert value(checker, answer(logprobs=CONFIDENT)) == 0.6


def test_confidence_is_frozen_and_bounded() -> None:
    result = Confidence(value=0.5)
    with pytest.raises(ValidationError):
        result.value = 0.9  # type: ignore[misc]
    for bad in (-0.1, 1.1):
        with pytest.raises(ValidationError):
            Confidence(value=bad)


# --- offline use and the async protocol --------------------------------------------------------


def test_answer_confidence_is_the_default_checker_on_a_finished_reply() -> None:
    result = answer_confidence("Capital of France?", "Paris.")
    assert result == DefaultConfidence().check(TEXT, answer("Paris."))
    assert result.value == 0.9
    hedged = answer_confidence("Capital of France?", "It might be Paris, possibly Lyon.")
    assert hedged.value == pytest.approx(0.9 * 0.85**2)
    assert [s.split(":")[0] for s in hedged.signals] == ["logprobs", "hedging"]


def test_answer_confidence_reads_the_response_format_and_any_checker() -> None:
    broken = answer_confidence("Give JSON", '{"a": 1', response_format="json")
    assert broken.value <= 0.1 and broken.signals[-1].startswith("invalid_json")
    assert answer_confidence("Give JSON", '{"a": 1}', response_format="json").value == 0.9
    signals_only = answer_confidence("q", "I don't know.", AnswerSignalConfidence())
    assert signals_only == Confidence(value=0.5, signals=('uncertain: "I don\'t know" (x0.5)',))


def test_as_async_wraps_a_pure_checker_and_keeps_an_async_one() -> None:
    class Remote:
        async def acheck(self, request: ChatRequest, response: ChatResponse) -> Confidence:
            return Confidence(value=0.2, signals=("remote",))

    wrapped = as_async(DefaultConfidence())
    assert isinstance(wrapped, Sync)
    verdict = asyncio.run(wrapped.acheck(TEXT, answer(logprobs=CONFIDENT)))
    assert verdict == DefaultConfidence().check(TEXT, answer(logprobs=CONFIDENT))
    remote = Remote()
    kept: AsyncConfidenceChecker = as_async(remote)
    assert kept is remote
    assert asyncio.run(kept.acheck(TEXT, answer())).value == 0.2
