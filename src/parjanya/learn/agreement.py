"""Do two answers to one prompt agree? The default label of a shadow run.

A shadow run (`learn/shadow.py`) asks the next tier up the same question. The higher tier's answer
is taken as right, so the lower tier's answer is worth 1.0 when it agrees and 0.0 when it does not.
No judge model is needed, which keeps labelling free; the price is that agreement on open-ended
prose is a blunt test, so the rule prefers the part of an answer that can be compared exactly.

The rule, in order (the first that applies decides):

1. **Tool calls.** If either answer called tools, they agree when both called the same tools in
   the same order (names only: arguments are phrased freely).
2. **Final answers.** If both texts state a final answer, they agree when the normalised final
   answers are equal. A final answer is the last `\\boxed{...}`, else what follows the last
   "final answer" (optionally "is", ":" or "="), else the last line that starts with "Answer:".
   It ends at the end of its line, and at a sentence-ending period.
3. **Whole text.** Otherwise the normalised texts are compared as sets of words: they agree when
   the Jaccard similarity is at least `TEXT_AGREEMENT` (0.8).

Normalising: lower case; markdown emphasis, code ticks and enclosing quotes or brackets removed;
a choice such as "(B)" or "b." becomes "b"; numbers lose thousands separators and trailing zeros
("1,000.50" -> "1000.5"); whitespace collapses and trailing punctuation goes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "TEXT_AGREEMENT",
    "AnswerText",
    "Comparison",
    "agreement",
    "final_answer",
    "normalise",
    "tool_names",
]

TEXT_AGREEMENT = 0.8

_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_FINAL = re.compile(r"final\s+answer\s*(?:is\b)?\s*[:=]?\s*", re.IGNORECASE)
_ANSWER_LINE = re.compile(r"^\s*\**answer\**\s*[:=]\s*", re.IGNORECASE | re.MULTILINE)
_SENTENCE_END = re.compile(r"\.(?:\s|$)")
_EMPHASIS = re.compile(r"[*_`]+")
_NUMBER = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$|^[-+]?\d+\.\d+$")
_CHOICE = re.compile(r"^\(?([a-z])[).]?$")
_WORD = re.compile(r"\w+")
_ENCLOSING = ("()", "[]", '""', "''", "“”")


@dataclass(frozen=True)
class AnswerText:
    """What a tier answered: its text and the names of the tools it called, in order."""

    text: str
    tool_calls: tuple[str, ...] = ()


@dataclass(frozen=True)
class Comparison:
    """The lower tier's quality (the higher tier taken as right), and which rule gave it."""

    quality: float
    rule: str  # "tool_calls", "final_answer" or "text" here; a judge names its own


def final_answer(text: str) -> str | None:
    """The answer a text states as final (rule 2 above), not yet normalised; None if none."""
    boxed = _BOXED.findall(text)
    if boxed:
        return str(boxed[-1])
    for label in (_FINAL, _ANSWER_LINE):
        labels = list(label.finditer(text))
        if labels:
            stated = text[labels[-1].end() :].split("\n", 1)[0]
            end = _SENTENCE_END.search(stated)
            return (stated[: end.start()] if end else stated).strip() or None
    return None


def _unwrap(value: str) -> str:
    while len(value) >= 2 and any(value[0] + value[-1] == pair for pair in _ENCLOSING):
        value = value[1:-1].strip()
    return value


def normalise(answer: str) -> str:
    """One spelling per answer, so that formatting alone never makes two answers disagree."""
    value = _EMPHASIS.sub("", answer).strip().lower()
    value = " ".join(value.split()).rstrip(".,;:!? ")
    value = _unwrap(value)
    choice = _CHOICE.match(value)
    if choice:
        return choice[1]
    if _NUMBER.match(value):
        number = value.replace(",", "")
        return number.rstrip("0").rstrip(".") if "." in number else number
    return value


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def agreement(lower: AnswerText, higher: AnswerText) -> Comparison:
    """The rule above, applied: quality 1.0 when the answers agree, else 0.0."""
    if lower.tool_calls or higher.tool_calls:
        same = tuple(lower.tool_calls) == tuple(higher.tool_calls)
        return Comparison(1.0 if same else 0.0, "tool_calls")
    stated = final_answer(lower.text), final_answer(higher.text)
    if stated[0] is not None and stated[1] is not None:
        same = normalise(stated[0]) == normalise(stated[1])
        return Comparison(1.0 if same else 0.0, "final_answer")
    similar = _jaccard(_words(lower.text), _words(higher.text)) >= TEXT_AGREEMENT
    return Comparison(1.0 if similar else 0.0, "text")


def tool_names(calls: Sequence[object]) -> tuple[str, ...]:
    """The names of a result's tool calls (anything with a `name`), in order."""
    return tuple(str(getattr(call, "name", "")) for call in calls)
