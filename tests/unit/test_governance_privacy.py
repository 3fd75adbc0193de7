"""Privacy: the PII strategies, reversible redaction, private routing, concealed prompt text."""

from __future__ import annotations

import pytest

from parjanya.classify import PolicyRejection, classify, detect_pii
from parjanya.classify.scorer import HeuristicScorer
from parjanya.config import Deployment, ParjanyaConfig
from parjanya.governance.privacy import Masking, Private, Record, Redact, conceal, pii_handling
from parjanya.governance.scope import hop_scope
from parjanya.providers import ChatResponse
from parjanya.resilience.fallback import TierCall
from parjanya.schema import ChatMessage, TaskRequest, TaskResult, TaskStatus

PII_PROMPT = (
    "Email ana@example.com the receipt for card 4111 1111 1111 1111, then ana@example.com again"
)


def test_redaction_numbers_each_item_and_restores_what_comes_back() -> None:
    masking = Masking()
    masked = masking.mask(PII_PROMPT)
    assert "ana@example.com" not in masked and "4111" not in masked
    assert masked.count("[EMAIL_1]") == 2 and "[CARD_1]" in masked
    assert detect_pii(masked) == []
    answer = "Sent to [EMAIL_1]; card [CARD_1] charged; [EMAIL_9] is not ours"
    assert masking.restore(answer) == (
        "Sent to ana@example.com; card 4111 1111 1111 1111 charged; [EMAIL_9] is not ours"
    )


def test_placeholders_span_every_message_of_a_request() -> None:
    messages = [
        ChatMessage(role="system", content="Reply to bob@example.org only"),
        ChatMessage(role="user", content="Forward this to bob@example.org and eve@example.net"),
    ]
    sent, restore = Redact().outbound(messages)
    assert sent[0].content == "Reply to [EMAIL_1] only"
    assert sent[1].content == "Forward this to [EMAIL_1] and [EMAIL_2]"
    assert restore("[EMAIL_2]") == "eve@example.net"


def test_record_and_private_send_the_prompt_as_it_is() -> None:
    messages = [ChatMessage(role="user", content=PII_PROMPT)]
    for handling in (Record(), Private()):
        sent, restore = handling.outbound(messages)
        assert sent == messages and restore("[EMAIL_1]") == "[EMAIL_1]"
    assert pii_handling("private").private_only and not pii_handling("redact").private_only


def _config(action: str, *, private_in: str | None) -> ParjanyaConfig:
    config = ParjanyaConfig.model_validate({"routing": {"pii_action": action}})
    if private_in is not None:
        base = config.tiers[private_in].deployments[0].model_dump()  # type: ignore[index]
        config.tiers[private_in].deployments.append(  # type: ignore[index]
            Deployment.model_validate({**base, "name": "local", "private": True})
        )
    return config


def test_private_routes_pii_to_the_next_tier_up_with_a_private_deployment() -> None:
    config = _config("private", private_in="mid")
    decision = classify(TaskRequest(prompt=PII_PROMPT), config, HeuristicScorer())
    assert decision.tier == "mid" and decision.max_tier == "mid"
    assert any("private: PII" in r for r in decision.reasons)
    clean = classify(TaskRequest(prompt="Rename tmp to total"), config, HeuristicScorer())
    assert clean.tier == "low" and clean.max_tier == "high"


def test_private_without_a_private_deployment_is_a_clear_refusal() -> None:
    with pytest.raises(PolicyRejection, match="not private"):
        classify(
            TaskRequest(prompt=PII_PROMPT), _config("private", private_in=None), HeuristicScorer()
        )
    with pytest.raises(PolicyRejection):
        classify(
            TaskRequest(prompt=PII_PROMPT, max_tier="low"),
            _config("private", private_in="mid"),
            HeuristicScorer(),
        )


def test_the_hop_scope_holds_a_pii_task_to_private_and_restores_redacted_answers() -> None:
    request = TaskRequest(prompt=PII_PROMPT)
    config = _config("private", private_in="mid")
    doc = TaskResult(id="t", status=TaskStatus.running)
    doc.complexity = classify(request, config, HeuristicScorer()).complexity
    assert hop_scope(config, request, doc, "mid").needs.private_only
    redacting = hop_scope(_config("redact", private_in=None), request, doc, "low")
    assert not redacting.needs.private_only
    assert "ana@example.com" not in redacting.messages[0].content
    echoed = ChatResponse(text="Done: [EMAIL_1]", model="m", deployment="d")
    assert redacting.answer(echoed).text == "Done: ana@example.com"


def test_conceal_shows_size_and_hash_unless_allowed() -> None:
    hidden = conceal("my card is 4111 1111 1111 1111", allowed=False)
    assert hidden is not None and "4111" not in hidden and "30 chars" in hidden
    assert conceal("text", allowed=True) == "text" and conceal(None, allowed=False) is None


def test_under_private_a_judge_must_be_private_too() -> None:
    with pytest.raises(ValueError, match="private judges"):
        ParjanyaConfig.model_validate(
            {"routing": {"pii_action": "private", "shadow_judge": "sim-large"}}
        )
    with pytest.raises(ValueError, match="private judges"):
        ParjanyaConfig.model_validate(
            {
                "routing": {"pii_action": "private"},
                "confidence": {"checker": "judge", "judge_deployment": "sim-large"},
            }
        )
    assert ParjanyaConfig.model_validate(
        {"routing": {"pii_action": "redact", "shadow_judge": "sim-large"}}
    )


def test_a_tier_the_filter_emptied_names_the_constraints_in_the_history() -> None:
    request = TaskRequest(prompt=PII_PROMPT)
    config = _config("private", private_in="mid")
    doc = TaskResult(id="t", status=TaskStatus.running)
    doc.complexity = classify(request, config, HeuristicScorer()).complexity
    scope = hop_scope(config, request, doc, "high")
    scope.needs.excluded["sim-large"] = "not private"
    call = TierCall()
    scope.account(call, "high", 3)
    assert call.errors[0].error_type == "no_eligible_deployment"
    assert call.attempts[0].outcome == "error" and "sim-large: not private" in str(
        call.attempts[0].error
    )
    answered = TierCall(attempts=list(call.attempts))
    scope.account(answered, "high", 3)
    assert len(answered.attempts) == 1  # only an empty tier is explained
