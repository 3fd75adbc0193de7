"""Every branch of the finish / escalate / give-up decision."""

from __future__ import annotations

from typing import Any

from parjanya.escalation import Escalate, Finish, GiveUp, decide


def _decide(**overrides: Any) -> object:
    args: dict[str, Any] = dict(
        tier="low",
        answered=True,
        confidence=0.9,
        threshold=0.7,
        escalations=0,
        max_escalations=1,
        max_tier="high",
    )
    args.update(overrides)
    return decide(**args)


def test_a_confident_answer_finishes() -> None:
    assert _decide() == Finish(low_confidence=False)


def test_a_weak_answer_escalates_one_tier() -> None:
    assert _decide(confidence=0.3) == Escalate("mid", "low_confidence")


def test_a_weak_answer_after_the_escalation_budget_is_returned_flagged() -> None:
    assert _decide(tier="mid", confidence=0.3, escalations=1) == Finish(low_confidence=True)


def test_a_weak_answer_at_the_top_tier_is_returned_flagged() -> None:
    assert _decide(tier="high", confidence=0.1) == Finish(low_confidence=True)


def test_max_tier_caps_escalation() -> None:
    assert _decide(confidence=0.3, max_tier="low") == Finish(low_confidence=True)


def test_a_failed_tier_fails_over_even_without_escalation_budget() -> None:
    assert _decide(answered=False, confidence=None, escalations=1) == Escalate("mid", "failover")


def test_a_failed_top_tier_gives_up() -> None:
    assert isinstance(_decide(tier="high", answered=False, confidence=None), GiveUp)
    assert isinstance(_decide(tier="mid", answered=False, confidence=None, max_tier="mid"), GiveUp)


def test_no_confidence_signal_counts_as_confident() -> None:
    assert _decide(confidence=None) == Finish(low_confidence=False)
