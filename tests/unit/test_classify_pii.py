"""PII: what is found, what is masked, and what must not be mistaken for personal data."""

from __future__ import annotations

import pytest

from parjanya.classify import redact_pii
from parjanya.classify.pii import detect_pii, luhn_valid


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("Send the invoice to ana.lima+billing@example.co.uk today.", ["email"]),
        ("Call me on (415) 555-0134 after five.", ["phone"]),
        ("Our London desk is +44 20 7946 0958.", ["phone"]),
        ("Card: 4111 1111 1111 1111, exp 12/27", ["card"]),
        ("Charge 5555-5555-5555-4444 again.", ["card"]),
        ("Amex 378282246310005 on file", ["card"]),
        ("SSN 123-45-6789 is on the form", ["ssn"]),
        ("export OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwx", ["secret"]),
        ("aws key AKIAIOSFODNN7EXAMPLE in the config", ["secret"]),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789 leaked", ["secret"]),
        ('{"api_key": "f00dfacecafe1234"}', ["secret"]),
        ("password = hunter2hunter2", ["secret"]),
        ("Authorization: Bearer abcdefghijklmnop1234567890", ["secret"]),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", ["secret"]),
        ("mail bob@example.com or call 415-555-0134", ["email", "phone"]),
    ],
)
def test_detects_each_kind(text: str, kinds: list[str]) -> None:
    assert detect_pii(text) == kinds


@pytest.mark.parametrize(
    "text",
    [
        "Order 1234 5678 9012 3456 shipped",  # 16 digits, fails the Luhn check
        "ts=1700000000123 build 20240115",  # epoch milliseconds are not cards
        "2025-03-14 14:02:11.123 ERROR took 415ms",  # log timestamps are not phones
        "upgrade from 1.2.3 to 1.10.0 on 192.168.1.10",
        "set cache_key=user_profile_v2 and max_tokens: 4096",
        "decorate it with @dataclass(frozen=True)",
        "Rename `usr_cnt` to `user_count` in src/stats/report.py",
        "the ratio is 3/4 and the range 10-20",
    ],
)
def test_ordinary_text_has_no_pii(text: str) -> None:
    assert detect_pii(text) == []


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("1234567890123456")


def test_redaction_masks_every_kind_and_keeps_the_rest() -> None:
    text = (
        "Contact ana@example.com or (415) 555-0134. Card 4111 1111 1111 1111, "
        "api_key=abcd1234efgh5678, SSN 123-45-6789."
    )
    assert redact_pii(text) == (
        "Contact [EMAIL] or [PHONE]. Card [CARD], api_key=[SECRET], SSN [SSN]."
    )


def test_redaction_leaves_non_luhn_numbers_alone() -> None:
    text = "Order 1234 5678 9012 3456 shipped"
    assert redact_pii(text) == text


def test_redaction_masks_the_whole_private_key_block() -> None:
    text = "key:\n-----BEGIN PRIVATE KEY-----\nMIIBVQ\nabc\n-----END PRIVATE KEY-----\nthanks"
    assert redact_pii(text) == "key:\n[SECRET]\nthanks"


def test_redacted_text_has_nothing_left_to_detect() -> None:
    text = "sk-ant-abcdefghijklmnopqrstuvwx, bob@example.com, +1 415 555 0134, 378282246310005"
    assert detect_pii(redact_pii(text)) == []
