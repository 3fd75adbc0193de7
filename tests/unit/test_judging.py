"""The judge comparator over httpx.MockTransport: a rating, and every way back to agreement."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import httpx

from parjanya.config import Deployment
from parjanya.judge import GRADING_SYSTEM
from parjanya.learn.agreement import AnswerText, Comparison
from parjanya.learn.judging import JudgeComparator
from parjanya.learn.shadow import make_comparator
from parjanya.providers import build_provider

JUDGE = Deployment(
    name="judge-small",
    base_url="http://judge.test/v1",
    model="judge-model",
    price_in_per_mtok=0.1,
    price_out_per_mtok=0.2,
    context_window=16_000,
)
LOWER = AnswerText("Reverse charge applies; the supplier charges VAT. Final answer: 7.")
HIGHER = AnswerText("The customer accounts for the VAT under reverse charge. Final answer: 9.")

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def reply(text: str) -> httpx.Response:
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": "stop",
    }
    return httpx.Response(200, json={"id": "j1", "model": "judge-model", "choices": [choice]})


def compare(handler: Handler, lower: AnswerText = LOWER, higher: AnswerText = HIGHER) -> Comparison:
    async def go() -> Comparison:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            comparator = make_comparator(build_provider(JUDGE, client))
            assert isinstance(comparator, JudgeComparator)
            assert comparator.name == "judge judge-small"
            return await comparator.compare("Apply the VAT reverse charge.", lower, higher)

    return asyncio.run(go())


def test_the_judge_grades_the_lower_answer_against_the_higher_one() -> None:
    seen: list[dict[str, object]] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return reply("The response reaches a different result. Rating: [[3]]")

    verdict = compare(handler)
    assert verdict.quality == (3 - 1) / 9 and verdict.rule == "judge rated 3/10"
    (body,) = seen
    messages = body["messages"]
    assert isinstance(messages, list) and messages[0]["content"] == GRADING_SYSTEM
    shown = messages[1]["content"]
    reference = shown.index("[The Start of the Reference Answer]")
    response = shown.index("[The Start of the Assistant's Response]")
    assert shown.index(HIGHER.text) > reference and shown.index(LOWER.text) > response


def test_a_judgement_that_fails_is_labelled_by_agreement_and_says_why() -> None:
    async def unrated(request: httpx.Request) -> httpx.Response:
        return reply("Both look fine to me.")

    async def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"error": {"message": "down"}})

    for handler, why in ((unrated, "no rating"), (broken, "call failed")):
        verdict = compare(handler)
        assert verdict.quality == 0.0  # final answers 7 and 9 disagree
        assert verdict.rule.startswith("final_answer (judge judge-small: ") and why in verdict.rule


def test_tool_calls_are_not_sent_to_the_judge() -> None:
    async def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError("the judge was asked about tool calls")

    verdict = compare(never, AnswerText("", ("search",)), AnswerText("", ("search",)))
    assert (verdict.quality, verdict.rule) == (1.0, "tool_calls")
