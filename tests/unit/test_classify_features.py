"""The feature pass: one measurement of the text that everything downstream reads."""

from __future__ import annotations

import dataclasses

import pytest

from parjanya.classify import lexicon
from parjanya.classify.domain import detect_domain
from parjanya.classify.features import measure, measure_text
from parjanya.schema import ChatMessage, Sla, TaskRequest


def test_counts_structure() -> None:
    f = measure_text(
        "First, read the spec. Then:\n"
        "1. List the endpoints.\n2. Explain why each is needed.\n"
        "- keep it short\n- no jargon\n"
        "If a field is optional, say so; otherwise mark it required. Which ones are paginated?"
    )
    assert f.numbered_steps == 2
    assert f.list_items == 2
    assert f.sequence_markers == 2  # first, then
    assert f.questions == 1
    assert f.conditionals == 2  # if, otherwise
    assert f.explanation_requests == 1  # why
    assert f.deliverables >= 2  # read, list, explain
    assert f.lines == 6


def test_counts_code_logs_math_and_files() -> None:
    f = measure_text(
        "See src/app/main.py and utils.ts, docs at https://example.com/x.\n"
        "```python\ndef f(x):\n    return x\n```\n"
        "2025-01-02 10:11:12 ERROR boom\n"
        "Prove the loop is O(n log n) and that T(n) ≤ 2T(n/2) + n."
    )
    assert f.code_blocks == 1 and f.code_lines >= 2
    assert f.log_lines == 1
    assert f.math_symbols >= 2
    assert f.file_refs == 2 and f.urls == 1


def test_tokens_include_the_context_hint() -> None:
    request = TaskRequest(prompt="x" * 400, context_tokens=5_000)
    f = measure(request)
    assert f.text_tokens == 100
    assert f.estimated_tokens == 5_100


def test_reads_every_message_and_request_hints() -> None:
    request = TaskRequest(
        messages=[
            ChatMessage(role="system", content="You are terse."),
            ChatMessage(role="user", content="Reply in JSON. Why is the build red?"),
        ],
        sla=Sla.critical,
        max_output_tokens=200,
    )
    f = measure(request)
    assert f.wants_json and f.sla is Sla.critical and f.max_output_tokens == 200
    assert f.explanation_requests == 1


def test_vague_words_and_identifiers() -> None:
    vague = measure_text("Maybe improve the stuff somehow, make it better etc.")
    precise = measure_text("Rename `usr_cnt` to `user_count` in getUserStats of HTTPClient.")
    assert vague.vague_words >= 5 and vague.technical_terms == 0
    assert precise.vague_words == 0 and precise.technical_terms >= 4


def test_phrases_count_once_and_only_as_whole_words() -> None:
    f = measure_text("Find the root cause. In cases like this, allow at most two retries.")
    assert f.reasoning_words >= 1 and f.open_scope_words >= 1
    assert f.conditionals == 0  # "in case" must not match the start of "in cases"
    assert f.constraint_words == 1  # "at most"
    assert measure_text("Retry, in case the lock expired.").conditionals == 1


def test_pii_kinds_are_measured_with_the_text() -> None:
    assert measure_text("ping ana@example.com").pii == ("email",)


def test_features_are_frozen_and_deterministic() -> None:
    text = "Design a cache. Compare Redis versus Memcached and explain the trade-offs."
    first, second = measure_text(text), measure_text(text)
    assert first == second
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.chars = 1  # type: ignore[misc]


def test_empty_ish_text() -> None:
    f = measure_text("   ")
    assert f.sentences == 0 and f.words == 0 and f.deliverables == 0


@pytest.mark.parametrize(
    ("text", "domain"),
    [
        ("Fix the bug in parse_date() in src/utils/dates.py; the unit test fails.", "code"),
        ("Prove that the recurrence T(n) = 2T(n/2) + n is O(n log n) by induction.", "math"),
        ("Rewrite this paragraph of my blog post in a friendlier tone.", "writing"),
        ("Write a SQL query that joins the orders table with the customers table.", "data"),
        ("Does this NDA clause limit our liability under GDPR?", "legal"),
        ("What dosage adjustments are needed for a patient with renal impairment?", "medical"),
        ("Reconcile the invoice totals with the ledger before the tax filing.", "finance"),
        (
            "Is this endpoint vulnerable to SQL injection or XSS? Check the password reset.",
            "security",
        ),
        ("Analyze the churn trends in the quarterly metrics report.", "analysis"),
        ("Hi! How are you today?", "chat"),
    ],
)
def test_domain_detection(text: str, domain: str) -> None:
    assert detect_domain(measure_text(text)) == domain


def test_every_domain_has_words() -> None:
    tagged = {tag for tags in lexicon.WORD_TAGS.values() for tag in tags}
    assert {lexicon.DOMAIN_PREFIX + d for d in lexicon.DOMAINS} <= tagged


def test_public_interface() -> None:
    import parjanya.classify as classify_package

    assert {"classify", "redact_pii", "PolicyRejection", "Scorer"} <= set(classify_package.__all__)
    assert all(hasattr(classify_package, name) for name in classify_package.__all__)
