"""How sure are we of an answer: a number in [0, 1] plus the reasons, from pluggable checkers.

The tier task compares `Confidence.value` with the tier's `confidence_threshold` and escalates
below it. Two protocols, because some checkers need I/O: a `ConfidenceChecker` is sync and pure
(`check(request, response)`), an `AsyncConfidenceChecker` may call out (`acheck`, e.g. the judge
of `judge.py`). The worker awaits the async one; `as_async` lifts a pure checker into it, so a
learned checker replaces `DefaultConfidence` without touching the caller. `answer_confidence` runs
a pure checker on a bare prompt and answer, for offline measurement and the CLI
(`aanswer_confidence` an async one).

`DefaultConfidence` multiplies two independent kinds of evidence:
- token certainty (`LogprobConfidence`) when the vendor returned logprobs, else a fixed prior;
- answer signals (`AnswerSignalConfidence`): empty, truncated, refusal, hedging, invalid JSON.
A product, not a min, because the two measure different things and each should pull the other
down: fluent-but-hedged text and hesitant-but-plain text are both worth a second look, and both
together more so.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from parjanya.providers.base import ChatRequest, ChatResponse
from parjanya.schema import ChatMessage

__all__ = [
    "DEFAULT_SIGNALS",
    "AnswerSignalConfidence",
    "AsyncConfidenceChecker",
    "Confidence",
    "ConfidenceChecker",
    "DefaultConfidence",
    "LogprobConfidence",
    "Signal",
    "Sync",
    "aanswer_confidence",
    "answer_confidence",
    "as_async",
    "offline_exchange",
]


class Confidence(BaseModel):
    """A checker's verdict. `signals` explain it in words, for the task history and for tuning."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float = Field(ge=0, le=1)
    signals: tuple[str, ...] = ()


class ConfidenceChecker(Protocol):
    """Pure: the verdict depends on the request and response alone, and nothing is called."""

    def check(self, request: ChatRequest, response: ChatResponse) -> Confidence: ...


@runtime_checkable
class AsyncConfidenceChecker(Protocol):
    """What the tier worker awaits. May do I/O, but never raises: a failure is a verdict too."""

    async def acheck(self, request: ChatRequest, response: ChatResponse) -> Confidence: ...


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


@dataclass(frozen=True)
class LogprobConfidence:
    """Token certainty: a blend of the geometric-mean token probability and its weakest tokens.

    `exp(mean(logprob))` alone lets a long, fluent answer hide the few tokens that carry the fact
    (a number, a name) behind hundreds of easy ones. So the lowest `tail_fraction` of tokens
    (at least one) is averaged too, and weighted by `tail_weight`:

        value = (1 - tail_weight) * exp(mean(all)) + tail_weight * exp(mean(lowest tail))

    The tail weight is small because some low tokens are only a choice between synonyms.
    Without logprobs the result is `missing`, flagged in the signals.
    """

    tail_fraction: float = 0.1
    tail_weight: float = 0.2
    missing: float = 0.5

    def check(self, request: ChatRequest, response: ChatResponse) -> Confidence:
        logprobs = response.logprobs
        if not logprobs:
            return Confidence(value=self.missing, signals=("logprobs: none returned",))
        mean_p = math.exp(fmean(logprobs))
        tail = sorted(logprobs)[: max(1, math.ceil(len(logprobs) * self.tail_fraction))]
        tail_p = math.exp(fmean(tail))
        value = _clamp((1 - self.tail_weight) * mean_p + self.tail_weight * tail_p)
        return Confidence(
            value=value,
            signals=(
                f"logprobs: mean p={mean_p:.2f}, lowest {len(tail)} of {len(logprobs)} "
                f"tokens p={tail_p:.2f} -> {value:.2f}",
            ),
        )


# --- answer signals ----------------------------------------------------------------------------

Detector = Callable[[ChatRequest, ChatResponse], list[str]]


@dataclass(frozen=True)
class Signal:
    """One sign of a weak answer: `detect` returns evidence (empty when absent); each piece of
    evidence, up to `max_count`, multiplies the confidence by `factor`."""

    name: str
    factor: float
    detect: Detector
    max_count: int = 1


def _text(response: ChatResponse) -> str:
    return response.text.replace("\u2019", "'").strip()


_REFUSAL = re.compile(
    r"\b(?:I|we)(?: can't| cannot| can not| won't| will not|'m unable to| am unable to"
    r"|'m not able to| am not able to)\b|\bI'm sorry, but\b|\bas an AI\b",
    re.IGNORECASE,
)
_UNCERTAIN = re.compile(
    r"\bI(?:'m| am) not (?:sure|certain)\b|\bnot entirely (?:sure|certain)\b"
    r"|\bI (?:don't|do not) know\b",
    re.IGNORECASE,
)
_HEDGES = re.compile(
    r"\b(?:might be|possibly|perhaps|I may be wrong|it's unclear|(?:rough|wild|educated) guess)\b",
    re.IGNORECASE,
)


def _empty(request: ChatRequest, response: ChatResponse) -> list[str]:
    # A tool call is an answer: agents' turns are often nothing else, with no text at all.
    return [] if _text(response) or response.tool_calls else ["no output text or tool call"]


def _truncated(request: ChatRequest, response: ChatResponse) -> list[str]:
    return ["stopped at max_tokens"] if response.finish_reason == "length" else []


def _refusal(request: ChatRequest, response: ChatResponse) -> list[str]:
    # Only the opening: a refusal comes first, while "I cannot stress enough" deep in an answer
    # is just prose.
    match = _REFUSAL.search(_text(response)[:300])
    return [repr(match.group(0))] if match else []


def _uncertain(request: ChatRequest, response: ChatResponse) -> list[str]:
    return [repr(m) for m in _UNCERTAIN.findall(_text(response))[:1]]


def _hedging(request: ChatRequest, response: ChatResponse) -> list[str]:
    return [repr(m) for m in _HEDGES.findall(_text(response))]


def _invalid_json(request: ChatRequest, response: ChatResponse) -> list[str]:
    text = _text(response)
    if request.response_format != "json" or not text:
        return []
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return [f"output is not JSON ({exc.msg})"]
    return []


#: The default signs and their weights. A new sign is one detector plus one entry here.
DEFAULT_SIGNALS: tuple[Signal, ...] = (
    Signal("empty", 0.0, _empty),
    Signal("truncated", 0.5, _truncated),
    Signal("refusal", 0.3, _refusal),
    Signal("uncertain", 0.5, _uncertain),  # says outright it does not know
    Signal("hedging", 0.85, _hedging, max_count=4),  # soft hedges add up, down to 0.85**4 ~ 0.52
    Signal("invalid_json", 0.1, _invalid_json),
)


@dataclass(frozen=True)
class AnswerSignalConfidence:
    """Reads the answer text and finish reason: 1.0 times the factor of each signal that fires."""

    signals: Sequence[Signal] = DEFAULT_SIGNALS

    def check(self, request: ChatRequest, response: ChatResponse) -> Confidence:
        value = 1.0
        reasons: list[str] = []
        for signal in self.signals:
            evidence = signal.detect(request, response)[: signal.max_count]
            if evidence:
                value *= signal.factor ** len(evidence)
                reasons.append(f"{signal.name}: {', '.join(evidence)} (x{signal.factor:g})")
        return Confidence(value=_clamp(value), signals=tuple(reasons))


@dataclass(frozen=True)
class DefaultConfidence:
    """Token certainty (or `prior` without logprobs) times the answer signals.

    The prior sits above the default tier threshold (0.7) so that, with no logprobs, a clean answer
    passes and any one strong signal (truncated, refusal, uncertain, invalid JSON) escalates.
    """

    tokens: ConfidenceChecker = field(default_factory=LogprobConfidence)
    answer: ConfidenceChecker = field(default_factory=AnswerSignalConfidence)
    prior: float = 0.9

    def check(self, request: ChatRequest, response: ChatResponse) -> Confidence:
        if response.logprobs:
            base = self.tokens.check(request, response)
        else:
            base = Confidence(value=self.prior, signals=(f"logprobs: none, prior {self.prior:g}",))
        answer = self.answer.check(request, response)
        return Confidence(
            value=_clamp(base.value * answer.value), signals=base.signals + answer.signals
        )


# --- adapters and offline use ------------------------------------------------------------------


@dataclass(frozen=True)
class Sync:
    """A pure checker behind the async protocol: no I/O, so it answers without yielding."""

    checker: ConfidenceChecker

    async def acheck(self, request: ChatRequest, response: ChatResponse) -> Confidence:
        return self.checker.check(request, response)


def as_async(checker: ConfidenceChecker | AsyncConfidenceChecker) -> AsyncConfidenceChecker:
    """`checker` itself if it is already async, else wrapped in `Sync`."""
    if isinstance(checker, AsyncConfidenceChecker):
        return checker
    return Sync(checker)


_DEFAULT = DefaultConfidence()


def offline_exchange(
    prompt: str, answer: str, *, response_format: Literal["text", "json"] = "text"
) -> tuple[ChatRequest, ChatResponse]:
    """A one-message request and its reply as judged public data gives them, taken as finished.

    Such data carries no logprobs, no finish reason and no deployment, so the answer is taken as
    complete (`finish_reason="stop"`); the default checker then measures its prior and answer
    signals, exactly what it computes for a vendor that returns no logprobs.
    """
    request = ChatRequest(
        messages=[ChatMessage(role="user", content=prompt)],
        response_format=response_format,
        logprobs=False,
    )
    response = ChatResponse(
        text=answer, finish_reason="stop", model="offline", deployment="offline"
    )
    return request, response


def answer_confidence(
    prompt: str,
    answer: str,
    checker: ConfidenceChecker = _DEFAULT,
    *,
    response_format: Literal["text", "json"] = "text",
) -> Confidence:
    """The verdict of a pure `checker` on `answer` to `prompt` (see `offline_exchange`)."""
    return checker.check(*offline_exchange(prompt, answer, response_format=response_format))


async def aanswer_confidence(
    prompt: str,
    answer: str,
    checker: AsyncConfidenceChecker,
    *,
    response_format: Literal["text", "json"] = "text",
) -> Confidence:
    """The same for an async checker (a judge), e.g. to measure it offline beside the default."""
    request, response = offline_exchange(prompt, answer, response_format=response_format)
    return await checker.acheck(request, response)
