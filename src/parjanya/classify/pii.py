"""Find personal data and secrets in a prompt, and mask them before text leaves for a provider.

Detection and redaction share one table of patterns so they can never disagree: whatever
`detect_pii` reports, `redact_pii` masks. Each pattern may carry a validator that runs on the match
(the Luhn check for cards, word boundaries), so a 16-digit order number is not mistaken for a card.

Detection runs on every task, so it first narrows the text cheaply (digit runs for numbers, long
whitespace-free chunks for keys) and runs the exact patterns only on what is left; redaction is
rarer and simply runs every pattern over the whole text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

EMAIL = "email"
PHONE = "phone"
CARD = "card"
SECRET = "secret"
SSN = "ssn"

Narrow = Callable[["TextViews"], str]
Validator = Callable[[re.Match[str]], bool]


def luhn_valid(digits: str) -> bool:
    """The checksum every payment card number carries; random digit runs fail it 9 times in 10."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


# -- validators: run on a match, see the text around it ------------------------------------------

#: Issuer prefixes start with 2-6 (Mastercard, Visa, Amex, Discover, JCB, UnionPay); the check
#: keeps 13-digit epoch-millisecond timestamps in pasted logs from reading as cards.
_CARD_FIRST_DIGITS = frozenset("23456")
_NON_DIGIT = re.compile(r"\D")
_NUMBER_GLUE = frozenset("0123456789-.")


def _standalone_number(match: re.Match[str]) -> bool:
    """Not a slice of a longer number, version string or dashed id."""
    text, start, end = match.string, match.start(), match.end()
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    return before not in _NUMBER_GLUE and not (
        after in _NUMBER_GLUE and text[end + 1 : end + 2].isdigit()
    )


def _is_card(match: re.Match[str]) -> bool:
    if match.end() - match.start() < 13:
        return False  # short runs cannot be cards: skip extracting the digits
    digits = _NON_DIGIT.sub("", match.group(0))
    return (
        13 <= len(digits) <= 19
        and digits[0] in _CARD_FIRST_DIGITS
        and _standalone_number(match)
        and luhn_valid(digits)
    )


def _is_ssn(match: re.Match[str]) -> bool:
    area, group, serial = match.group(0).split("-")
    return (
        area not in ("000", "666")
        and not area.startswith("9")
        and group != "00"
        and serial != "0000"
        and _standalone_number(match)
    )


_KEY_NAME = re.compile(
    r"(?i)(?<![A-Za-z0-9])(?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?key|auth[_-]?token|token"
    r"|password|passwd|pwd)[\"']?[ \t]*\Z"
)


def _is_assigned_secret(match: re.Match[str]) -> bool:
    """`=`/`:` followed by a long value is only a secret when the name before it says so."""
    start = match.start()
    return _KEY_NAME.search(match.string, max(0, start - 24), start) is not None


def _word_bounded(match: re.Match[str]) -> bool:
    start = match.start()
    return start == 0 or not (match.string[start - 1].isalnum() or match.string[start - 1] == "_")


# -- narrowing: the part of the text a pattern could possibly match ------------------------------

_DIGIT_RUN = re.compile(r"[(+\d][\d ().+-]{6,}+")
_NOT_DIGITS = str.maketrans("", "", " ().+-")


class TextViews:
    """Cheap views of one text, each computed at most once and shared by every pattern."""

    __slots__ = ("_chunks", "_runs", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._chunks: list[str] | None = None
        self._runs: list[tuple[str, int]] | None = None

    @property
    def chunks(self) -> list[str]:
        """Whitespace-separated pieces: keys and e-mail addresses never contain spaces."""
        if self._chunks is None:
            self._chunks = self.text.split()
        return self._chunks

    @property
    def digit_runs(self) -> list[tuple[str, int]]:
        """(run, digit count) for each stretch of digits and phone/card separators."""
        if self._runs is None:
            runs = _DIGIT_RUN.findall(self.text)
            self._runs = [(run, len(run.translate(_NOT_DIGITS))) for run in runs]
        return self._runs


def _runs_with(least_digits: int) -> Narrow:
    """Only digit runs long enough to hold the kind: cards 13+, SSNs 9+, phones 7+ digits."""

    def narrow(views: TextViews) -> str:
        return "\n".join([run for run, digits in views.digit_runs if digits >= least_digits])

    return narrow


def _long_chunks(views: TextViews) -> str:
    """Keys are long and unbroken; the private-key header is the one exception, kept whole."""
    if "PRIVATE KEY" in views.text:
        return views.text
    return "\n".join([chunk for chunk in views.chunks if len(chunk) >= 16])


def _containing(*needles: str) -> Narrow:
    def narrow(views: TextViews) -> str:
        return views.text if any(needle in views.text for needle in needles) else ""

    return narrow


def _with_at_sign(views: TextViews) -> str:
    if "@" not in views.text:
        return ""
    return "\n".join([chunk for chunk in views.chunks if "@" in chunk])


def _always(match: re.Match[str]) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class PiiPattern:
    kind: str
    pattern: re.Pattern[str]
    mask: str
    narrow: Narrow  # returns the text worth scanning when detecting ("" skips the pattern)
    valid: Validator = _always
    mask_group: bool = False  # mask only the named value group, keeping `api_key=` readable


_SECRET_TOKENS = re.compile(
    r"""
      sk-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_-]{16,}            # OpenAI / Anthropic / Stripe
    | (?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])                        # AWS access key id
    | gh[pousr]_[A-Za-z0-9]{20,} | github_pat_[A-Za-z0-9_]{20,}    # GitHub
    | xox[abprs]-[A-Za-z0-9-]{10,}                                 # Slack
    | AIza[0-9A-Za-z_-]{35}                                        # Google
    | eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}   # JWT
    | -----BEGIN[ A-Z]*PRIVATE\ KEY-----(?:[\s\S]*?-----END[ A-Z]*PRIVATE\ KEY-----)?
    """,
    re.VERBOSE,
)
# One pattern per sign, each starting with it as a literal so the engine skips ahead quickly; the
# lookbehind right after drops `12:00:01`-style matches (a digit before the sign) at once.
_SECRET_AFTER_COLON = re.compile(r":(?<=[A-Za-z_\"' \t]:)[ \t]*[\"']?(?P<value>[^\s\"',;]{8,})")
_SECRET_AFTER_EQUALS = re.compile(r"=(?<=[A-Za-z_\"' \t]=)[ \t]*[\"']?(?P<value>[^\s\"',;]{8,})")
_BEARER = re.compile(r"(?i:bearer)[ \t]+(?P<value>[A-Za-z0-9._~+/-]{16,}=*)")
_CARD = re.compile(r"\d(?:[ -]?+\d)*+")  # a whole run of digits; `_is_card` checks its length
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_SSN = re.compile(r"\d{3}-\d{2}-\d{4}")
_PHONE = re.compile(
    r"""(?x)
    (?: \+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){2,3}   # +44 20 7946 0958
      | \(\d{3}\)\s?\d{3}[\s.-]\d{4}                                           # (415) 555-0134
      | \d{3}[.\s-]\d{3}[.\s-]\d{4}                                            # 415-555-0134
    )"""
)


def _is_phone(match: re.Match[str]) -> bool:
    return _standalone_number(match) and _word_bounded(match)


#: Order is redaction order: secrets first (they may hold digits or '@'), cards before phones.
PATTERNS: tuple[PiiPattern, ...] = (
    PiiPattern(SECRET, _SECRET_TOKENS, "[SECRET]", _long_chunks, _word_bounded),
    PiiPattern(
        SECRET, _SECRET_AFTER_COLON, "[SECRET]", _containing(":"), _is_assigned_secret, True
    ),
    PiiPattern(
        SECRET, _SECRET_AFTER_EQUALS, "[SECRET]", _containing("="), _is_assigned_secret, True
    ),
    PiiPattern(SECRET, _BEARER, "[SECRET]", _containing("earer", "EARER"), mask_group=True),
    PiiPattern(CARD, _CARD, "[CARD]", _runs_with(13), _is_card),
    PiiPattern(EMAIL, _EMAIL, "[EMAIL]", _with_at_sign, _word_bounded),
    PiiPattern(SSN, _SSN, "[SSN]", _runs_with(9), _is_ssn),
    PiiPattern(PHONE, _PHONE, "[PHONE]", _runs_with(7), _is_phone),
)


def detect_pii(text: str) -> list[str]:
    """The kinds of sensitive data in `text`, sorted and unique (empty when there is none)."""
    kinds: set[str] = set()
    views = TextViews(text)
    for entry in PATTERNS:
        if entry.kind in kinds:
            continue
        haystack = entry.narrow(views)
        if haystack and any(entry.valid(m) for m in entry.pattern.finditer(haystack)):
            kinds.add(entry.kind)
    return sorted(kinds)


def redact_pii(text: str) -> str:
    """`text` with each item masked as [EMAIL], [PHONE], [CARD], [SECRET] or [SSN]."""
    for entry in PATTERNS:
        text = entry.pattern.sub(_masker(entry), text)
    return text


def _masker(entry: PiiPattern) -> Callable[[re.Match[str]], str]:
    def mask(match: re.Match[str]) -> str:
        if not entry.valid(match):
            return match.group(0)
        if not entry.mask_group:
            return entry.mask
        offset = match.start()
        start, end = match.span("value")
        whole = match.group(0)
        return whole[: start - offset] + entry.mask + whole[end - offset :]

    return mask
