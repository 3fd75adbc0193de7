"""The judge checker over httpx.MockTransport and the sim's handler: rating, fallbacks, config."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from parjanya.checkers import build_checker
from parjanya.confidence import Confidence, DefaultConfidence, Sync, aanswer_confidence
from parjanya.config import Deployment, ParjanyaConfig
from parjanya.judge import GRADING_SYSTEM, JudgeConfidence, grading_request, parse_rating
from parjanya.providers import ChatRequest, ChatResponse, build_provider
from parjanya.providers.transport import AiohttpPoster
from parjanya.schema import ChatMessage, ToolCall
from parjanya.sim import SimConfig, SimProvider, error_marker

JUDGE = Deployment(
    name="judge-small",
    base_url="http://judge.test/v1",
    model="judge-model",
    price_in_per_mtok=0.1,
    price_out_per_mtok=0.2,
    context_window=16_000,
)
QUESTION = ChatRequest(messages=[ChatMessage(role="user", content="What is 17 * 3?")])
ANSWER = ChatResponse(text="17 * 3 = 51.", finish_reason="stop", model="m", deployment="d")
DEFAULT = DefaultConfidence().check(QUESTION, ANSWER)

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def reply(text: str) -> httpx.Response:
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": "stop",
    }
    return httpx.Response(200, json={"id": "j1", "model": "judge-model", "choices": [choice]})


def judge(
    handler: Handler,
    response: ChatResponse = ANSWER,
    request: ChatRequest = QUESTION,
    **options: Any,
) -> Confidence:
    async def go() -> Confidence:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            checker = JudgeConfidence(build_provider(JUDGE, client), **options)
            return await checker.acheck(request, response)

    return asyncio.run(go())


def answering(text: str, seen: list[dict[str, Any]] | None = None) -> Handler:
    async def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(json.loads(request.content))
        return reply(text)

    return handler


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rating"),
    [
        ("Correct and complete. Rating: [[8]]", 8.0),
        ('The format is "[[rating]]", e.g. [[5]]. The sum is right. Rating: [[9]]', 9.0),
        ("Rating: [[ 7.5 ]]", 7.5),
        ("[[6/10]]", 6.0),
        ('{"explanation": "wrong product", "rating": 2}', 2.0),
        ('```json\n{"score": "3"}\n```', 3.0),
        ("**Rating:** 4/10", 4.0),
        ("Score = 10", 10.0),
        ("Final verdict [7]", 7.0),
    ],
)
def test_ratings_are_read_from_many_shapes(text: str, rating: float) -> None:
    assert parse_rating(text) == rating


@pytest.mark.parametrize(
    "text", ["", "Looks right to me.", "Rating: [[11]]", "[[0]]", "rating: high", "[[abc]]"]
)
def test_no_rating_in_range_is_none(text: str) -> None:
    assert parse_rating(text) is None


def test_the_grading_request_shows_request_and_answer_and_is_deterministic() -> None:
    asked = grading_request(QUESTION.model_copy(update={"response_format": "json"}), ANSWER)
    system, user = asked.messages
    assert (system.role, system.content) == ("system", GRADING_SYSTEM)
    assert "[Request]\nWhat is 17 * 3?\n" in user.content
    assert "[The Start of the Assistant's Response]\n17 * 3 = 51.\n" in user.content
    assert "asked for the output in JSON" in user.content and '"[[rating]]"' in user.content
    assert (asked.temperature, asked.logprobs, asked.response_format) == (0.0, False, "text")
    long = ChatResponse(text="x" * 50, model="m", deployment="d")
    assert "[... 40 chars cut]" in grading_request(QUESTION, long, max_chars=10).messages[1].content


def test_a_conversation_is_shown_with_its_roles() -> None:
    chat = ChatRequest(
        messages=[
            ChatMessage(role="system", content="Be terse."),
            ChatMessage(role="user", content="What is 17 * 3?"),
        ]
    )
    user = grading_request(chat, ANSWER).messages[1].content
    assert "[Request]\nsystem: Be terse.\n\nuser: What is 17 * 3?\n" in user


# --- verdicts ----------------------------------------------------------------------------------


def test_the_rating_is_the_confidence_on_a_zero_to_one_scale() -> None:
    seen: list[dict[str, Any]] = []
    verdict = judge(answering("The product is right. Rating: [[8]]", seen))
    assert verdict.value == pytest.approx(7 / 9)
    assert verdict.signals == ("judge judge-small: rated 8/10 -> 0.78",)
    assert len(seen) == 1 and seen[0]["model"] == "judge-model"
    assert seen[0]["temperature"] == 0.0
    assert "17 * 3 = 51." in seen[0]["messages"][1]["content"]
    assert judge(answering("[[1]]")).value == 0.0
    assert judge(answering("[[10]]")).value == 1.0


def test_form_signals_the_judge_cannot_see_still_apply() -> None:
    cut = ANSWER.model_copy(update={"finish_reason": "length"})
    verdict = judge(answering("Rating: [[10]]"), cut)
    assert verdict.value == 0.5
    assert verdict.signals[1].startswith("truncated")
    broken = ANSWER.model_copy(update={"text": '{"product": 51'})
    as_json = QUESTION.model_copy(update={"response_format": "json"})
    assert judge(answering("[[10]]"), broken, as_json).value == pytest.approx(0.1)


def test_a_reply_without_a_rating_falls_back_to_the_default() -> None:
    verdict = judge(answering("I think the answer is fine."))
    assert verdict.value == DEFAULT.value
    assert verdict.signals[0].startswith("judge judge-small: no rating in 1..10 in the reply")
    assert verdict.signals[0].endswith("; DefaultConfidence used instead")
    assert verdict.signals[1:] == DEFAULT.signals


@pytest.mark.parametrize(
    ("status", "kind"), [(500, "server_error"), (429, "rate_limited"), (401, "auth_error")]
)
def test_a_failed_call_falls_back_and_says_why(
    status: int, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def failing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": {"message": "nope"}})

    with caplog.at_level(logging.WARNING, logger="parjanya.judge"):
        verdict = judge(failing)
    assert verdict.value == DEFAULT.value
    assert verdict.signals[0].startswith(f"judge judge-small: call failed ({kind}: ")
    assert [r.getMessage() for r in caplog.records] == [verdict.signals[0]]


def test_a_slow_judge_times_out_into_the_fallback() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return reply("[[9]]")

    verdict = judge(slow, timeout_s=0.05)
    assert verdict.value == DEFAULT.value
    assert verdict.signals[0].startswith("judge judge-small: call failed (timeout)")


def test_an_unexpected_error_never_reaches_the_worker() -> None:
    async def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("bug with key sk-secretsecret123")

    verdict = judge(broken)
    assert verdict.value == DEFAULT.value
    assert "call failed" in verdict.signals[0] and "secretsecret" not in verdict.signals[0]


def test_an_answer_without_text_is_not_sent_to_the_judge() -> None:
    seen: list[dict[str, Any]] = []
    empty = ANSWER.model_copy(update={"text": "  "})
    verdict = judge(answering("[[10]]", seen), empty)
    assert seen == []
    assert verdict.value == 0.0
    assert verdict.signals[0].startswith("judge judge-small: not asked, no text to grade")
    call = ToolCall(id="call_1", name="lookup", arguments="{}")
    tool_turn = judge(
        answering("[[1]]", seen), ANSWER.model_copy(update={"text": "", "tool_calls": [call]})
    )
    assert seen == [] and tool_turn.value == DEFAULT.value


def test_offline_answers_are_judged_through_the_same_checker() -> None:
    seen: list[dict[str, Any]] = []

    async def go() -> Confidence:
        handler = answering("Wrong: 17 * 3 is 51. [[2]]", seen)
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            checker = JudgeConfidence(build_provider(JUDGE, client))
            return await aanswer_confidence("What is 17 * 3?", "It is 54.", checker)

    verdict = asyncio.run(go())
    assert verdict.value == pytest.approx(1 / 9)
    assert "[Request]\nWhat is 17 * 3?\n" in seen[0]["messages"][1]["content"]
    assert "\nIt is 54.\n" in seen[0]["messages"][1]["content"]


# --- built from config -------------------------------------------------------------------------


def test_the_default_config_builds_the_pure_default_checker() -> None:
    checker = build_checker(ParjanyaConfig(), AiohttpPoster())  # opens nothing until a call
    assert checker == Sync(DefaultConfidence())


def test_the_judge_config_calls_its_deployment_through_the_sim() -> None:
    config = ParjanyaConfig.model_validate(
        {"confidence": {"checker": "judge", "judge_deployment": "sim-small", "judge_timeout_s": 5}}
    )
    sim = SimProvider(SimConfig(latency_scale=0))

    async def go(prompt: str) -> Confidence:
        asked = ChatRequest(messages=[ChatMessage(role="user", content=prompt)])
        async with httpx.AsyncClient(transport=sim.mock_transport()) as client:
            checker = build_checker(config, client)
            assert isinstance(checker, JudgeConfidence) and checker.timeout_s == 5
            return await checker.acheck(asked, ANSWER)

    # The sim answers in prose, never with a rating: the judgement falls back, and says so.
    prose = asyncio.run(go("What is 17 * 3?"))
    assert prose.value == DEFAULT.value
    assert prose.signals[0].startswith("judge sim-small: no rating in 1..10 in the reply")
    failed = asyncio.run(go(f"What is 17 * 3? {error_marker(500)}"))
    assert failed.signals[0].startswith("judge sim-small: call failed (server_error: ")
    assert sim.ledger.stats()["total"] == 2
