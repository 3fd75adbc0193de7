"""Context windows: the estimate, the drop_oldest policy, and how a tier call uses them."""

from __future__ import annotations

from typing import Literal

import pytest

from parjanya.config import ContextConfig
from parjanya.providers.base import ChatRequest, ContextTooLong
from parjanya.resilience.context import drop_oldest, fit, needed_tokens
from parjanya.schema import ChatMessage, Truncation
from tests.unit.tier_fakes import Scripted, answer, dep, run

DROP = ContextConfig(truncation="drop_oldest")
NONE = ContextConfig(truncation="none")

Role = Literal["system", "user", "assistant", "tool", "developer"]


def msg(role: Role, tokens: int, tag: str = "") -> ChatMessage:
    """A message of about `tokens` tokens (4 characters each), recognisable by `tag`."""
    return ChatMessage(role=role, content=(tag or role[0]).ljust(tokens * 4, "."))


def chat(*messages: ChatMessage, max_tokens: int = 100) -> ChatRequest:
    return ChatRequest(messages=list(messages), max_tokens=max_tokens)


def tags(request: ChatRequest) -> list[str]:
    return [m.content.rstrip(".") for m in request.messages]


CONVERSATION = chat(
    msg("system", 100, "sys"),
    msg("user", 1_000, "u1"),
    msg("assistant", 1_000, "a1"),
    msg("user", 1_000, "u2"),
    msg("assistant", 1_000, "a2"),
    msg("user", 500, "u3"),
)  # 4,600 prompt tokens + 1 + 100 reserved for the output = 4,701


pytestmark = pytest.mark.usefixtures("no_sleep")  # tests/unit/conftest.py


# --- the estimate and the policy -------------------------------------------------------------


def test_needed_tokens_reserves_the_output_budget_when_configured() -> None:
    assert needed_tokens(CONVERSATION, DROP) == 4_701
    assert needed_tokens(CONVERSATION, ContextConfig(reserve_output_tokens=False)) == 4_601


def test_drop_oldest_drops_oldest_first_and_keeps_system_and_the_last_user_message() -> None:
    fitted = drop_oldest(CONVERSATION, 2_800, DROP)
    assert fitted is not None
    request, truncation = fitted
    assert tags(request) == ["sys", "u2", "a2", "u3"]
    assert truncation == Truncation(
        policy="drop_oldest", dropped_messages=2, tokens_before=4_701, tokens_after=2_701
    )
    assert needed_tokens(request, DROP) <= 2_800
    assert request.max_tokens == CONVERSATION.max_tokens
    assert len(CONVERSATION.messages) == 6  # the original is left alone


def test_drop_oldest_may_drop_everything_but_system_and_the_last_user_message() -> None:
    fitted = drop_oldest(CONVERSATION, 701, DROP)
    assert fitted is not None
    assert tags(fitted[0]) == ["sys", "u3"]
    assert fitted[1].dropped_messages == 4


def test_messages_after_the_last_user_message_are_dropped_last() -> None:
    request = chat(msg("user", 1_000, "u1"), msg("user", 100, "u2"), msg("assistant", 1_000, "a"))
    fitted = drop_oldest(request, 1_500, DROP)
    assert fitted is not None and tags(fitted[0]) == ["u2", "a"]


def test_a_request_without_user_messages_keeps_its_last_message() -> None:
    request = chat(
        msg("system", 10, "s"), msg("assistant", 1_000, "a1"), msg("assistant", 20, "a2")
    )
    fitted = drop_oldest(request, 200, DROP)
    assert fitted is not None and tags(fitted[0]) == ["s", "a2"]


@pytest.mark.parametrize(
    ("request_", "limit"),
    [
        (CONVERSATION, 600),  # system + last user message alone need 701
        (CONVERSATION, 5_000),  # it already fits: nothing to cut
        (chat(msg("user", 9_000)), 8_000),  # nothing may be dropped
    ],
)
def test_drop_oldest_returns_none_when_no_cut_helps(request_: ChatRequest, limit: int) -> None:
    assert drop_oldest(request_, limit, DROP) is None


def test_fit_follows_the_policy() -> None:
    assert fit(CONVERSATION, 2_800, NONE) is None
    assert fit(CONVERSATION, 2_800, DROP) == drop_oldest(CONVERSATION, 2_800, DROP)


# --- in the tier's fallback chain ----------------------------------------------------------------


def test_context_too_long_skips_to_a_larger_window() -> None:
    small, same = dep("small", window=8_000), dep("same", window=8_000)
    large = dep("large", window=32_000)
    providers = Scripted({"small": [ContextTooLong("too long", deployment="small")]})

    result = run([small, same, large], providers, context=DROP)

    assert result.deployment == large
    assert providers.calls == {"small": 1, "large": 1}  # never retried; `same` is no larger
    assert [(a.deployment, a.outcome, a.error_type) for a in result.attempts] == [
        ("small", "error", "context_too_long"),
        ("same", "error", "context_too_long"),  # skipped without a call, recorded
        ("large", "ok", None),
    ]
    assert result.truncation is None


def test_a_window_too_small_for_the_estimate_is_skipped_without_a_call() -> None:
    small, large = dep("small", window=4_000), dep("large", window=32_000)
    providers = Scripted()

    result = run([small, large], providers, request=CONVERSATION, context=DROP)

    assert providers.calls == {"large": 1}
    skipped = result.attempts[0]
    assert (skipped.deployment, skipped.error_type) == ("small", "context_too_long")
    assert (skipped.tokens_in, skipped.cost_usd) == (0, 0.0)
    assert "4701" in (skipped.error or "") and "4000" in (skipped.error or "")
    assert result.truncation is None
    assert providers.requests["large"] == [CONVERSATION]  # not cut: a window was large enough


def test_truncation_is_applied_on_the_largest_window_and_recorded() -> None:
    small, larger = dep("small", window=2_000), dep("larger", window=3_000)
    providers = Scripted()

    result = run([larger, small], providers, request=CONVERSATION, context=DROP)

    assert result.ok and result.deployment == larger
    assert providers.calls == {"larger": 1}
    [sent] = providers.requests["larger"]
    assert tags(sent) == ["sys", "u2", "a2", "u3"]
    assert result.truncation == Truncation(
        policy="drop_oldest", dropped_messages=2, tokens_before=4_701, tokens_after=2_701
    )
    assert [(a.deployment, a.error_type) for a in result.attempts] == [
        ("larger", "context_too_long"),
        ("small", "context_too_long"),
        ("larger", None),
    ]


def test_a_refusal_by_the_largest_window_shrinks_what_it_is_assumed_to_hold() -> None:
    """The estimate said it fits, the vendor said no: cut below what was sent, then retry."""
    only = dep("only", window=5_000)
    providers = Scripted({"only": [ContextTooLong("no", deployment="only"), answer("only")]})

    result = run([only], providers, request=CONVERSATION, context=DROP)

    assert providers.calls == {"only": 2}
    assert result.ok and result.truncation is not None
    assert result.truncation.tokens_before == 4_701
    assert result.truncation.tokens_after <= 4_700
    assert len(providers.requests["only"][1].messages) < len(CONVERSATION.messages)


def test_truncation_none_fails_over_without_cutting() -> None:
    providers = Scripted()
    result = run([dep("small", window=2_000)], providers, request=CONVERSATION, context=NONE)
    assert not result.ok and result.truncation is None
    assert providers.calls == {}
    assert [a.error_type for a in result.attempts] == ["context_too_long"]


def test_without_a_context_config_nothing_is_cut() -> None:
    providers = Scripted()
    result = run([dep("small", window=2_000)], providers, request=CONVERSATION)
    assert not result.ok and result.truncation is None and providers.calls == {}


def test_a_prompt_that_cannot_be_cut_to_fit_fails_without_a_call() -> None:
    providers = Scripted()
    result = run([dep("tiny", window=500)], providers, request=CONVERSATION, context=DROP)
    assert not result.ok and result.truncation is None and providers.calls == {}


def test_a_truncated_retry_is_tried_once() -> None:
    providers = Scripted({"only": [ContextTooLong("still no", deployment="only")]})
    result = run([dep("only", window=3_000)], providers, request=CONVERSATION, context=DROP)
    assert not result.ok
    assert providers.calls == {"only": 1}  # the cut request was sent once, refused, done
    assert result.truncation is not None  # what was sent is on record


def test_output_reservation_can_be_turned_off() -> None:
    big_output = chat(msg("user", 1_000), max_tokens=8_000)
    providers = Scripted()
    reserve = run([dep("d", window=8_000)], providers, request=big_output, context=DROP)
    assert not reserve.ok
    no_reserve = ContextConfig(reserve_output_tokens=False)
    assert run([dep("d", window=8_000)], providers, request=big_output, context=no_reserve).ok
