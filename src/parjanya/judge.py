"""The judge checker: a (cheap) deployment grades the answer, and its rating is the confidence.

Answer signals read the form of an answer (empty, hedged, refused, not JSON); they cannot tell a
wrong sum from a right one. A judge model can, so `JudgeConfidence` asks one, in the manner of
MT-bench's single-answer grading: a grading prompt of its own shows the request and the answer,
asks for a short explanation, then a rating from 1 to 10 written as "[[N]]". The rating maps
linearly onto [0, 1] ((N - 1) / 9: 1 is 0, 10 is 1), times the two signals a grader cannot weigh
from the text alone (the vendor stopped at max_tokens; JSON was asked for and does not parse).

Parsing is tolerant (the last "[[N]]", else a JSON "rating"/"score", else "Rating: N", else the
last "[N]"), and the checker never raises into the worker: a failed call, a timeout or a reply
with no rating in 1..10 falls back to the default checker's verdict, with a signal saying why.
An answer with no text (empty, or tool calls only) is not sent to the judge: the default
checker's verdict stands, as there is no prose to grade.
The provider is an adapter of `providers/` (with the caller's HTTP client), so a unit test can
put the judge on an `httpx.MockTransport` or the simulated provider.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, field

from parjanya.confidence import (
    DEFAULT_SIGNALS,
    AnswerSignalConfidence,
    Confidence,
    ConfidenceChecker,
    DefaultConfidence,
)
from parjanya.providers.base import ChatRequest, ChatResponse, Provider, ProviderError, redact
from parjanya.schema import ChatMessage

log = logging.getLogger("parjanya.judge")

__all__ = ["GRADING_PROMPT", "GRADING_SYSTEM", "JudgeConfidence", "grading_request", "parse_rating"]

GRADING_SYSTEM = "You are a careful, impartial grader of AI assistants' answers."

GRADING_PROMPT = """[Instruction]
Act as an impartial judge of the response an AI assistant gave to the user request below. Judge \
above all whether it is correct and complete: check the reasoning, calculations and facts it \
relies on, and whether it does what was asked{format_note}. Do not reward length or style. Begin \
with a short explanation, at most three sentences. Then rate the response on a scale of 1 to 10, \
strictly in this format: "[[rating]]", for example: "Rating: [[5]]".

[Request]
{question}

[The Start of the Assistant's Response]
{answer}
[The End of the Assistant's Response]"""

_NUMBER = r"(\d+(?:\.\d+)?)"
_DOUBLE = re.compile(rf"\[\[\s*{_NUMBER}\s*(?:/\s*10\s*)?\]\]")
_JSON_KEY = re.compile(rf"[\"'](?:rating|score)[\"']\s*:\s*[\"']?{_NUMBER}", re.IGNORECASE)
_LABELLED = re.compile(rf"\b(?:rating|score)\b\**\s*[:=]?\s*\**\s*{_NUMBER}", re.IGNORECASE)
_SINGLE = re.compile(rf"\[\s*{_NUMBER}\s*(?:/\s*10\s*)?\]")

#: Facts of form a grader reading the text cannot weigh: where the vendor stopped, broken JSON.
FORM_SIGNALS = tuple(s for s in DEFAULT_SIGNALS if s.name in {"truncated", "invalid_json"})


def parse_rating(text: str) -> float | None:
    """The rating in a judge's reply, or None if there is none in 1..10.

    The last match of the first pattern that matches wins: the verdict comes after the
    explanation, which may quote the format ("[[5]]") or mention other numbers.
    """
    for pattern in (_DOUBLE, _JSON_KEY, _LABELLED, _SINGLE):
        found = pattern.findall(text)
        if found:
            rating = float(found[-1])
            return rating if 1.0 <= rating <= 10.0 else None
    return None


def cut_text(text: str, limit: int) -> str:
    """At most `limit` characters of a text the judge reads, saying how much was left out."""
    return text if len(text) <= limit else f"{text[:limit]}\n[... {len(text) - limit} chars cut]"


def grading_chat(prompt: str, max_tokens: int) -> ChatRequest:
    """A grading prompt as the judge deployment receives it: deterministic, no logprobs."""
    return ChatRequest(
        messages=[
            ChatMessage(role="system", content=GRADING_SYSTEM),
            ChatMessage(role="user", content=prompt),
        ],
        max_tokens=max_tokens,
        temperature=0.0,
        logprobs=False,
    )


def _question(request: ChatRequest) -> str:
    shown = [m for m in request.messages if m.content.strip()]
    if len(shown) == 1:
        return shown[0].content
    return "\n\n".join(f"{m.role}: {m.content}" for m in shown)


def grading_request(
    request: ChatRequest, response: ChatResponse, *, max_chars: int = 8000, max_tokens: int = 300
) -> ChatRequest:
    """What the judge is asked: the grading prompt around the request and the answer."""
    note = " (the user asked for the output in JSON)" if request.response_format == "json" else ""
    prompt = GRADING_PROMPT.format(
        format_note=note,
        question=cut_text(_question(request), max_chars),
        answer=cut_text(response.text, max_chars),
    )
    return grading_chat(prompt, max_tokens)


def _why(exc: Exception) -> str:
    if isinstance(exc, ProviderError):
        return f"{exc.error_type}: {exc}"[:200]
    if isinstance(exc, TimeoutError):
        return "timeout"
    return f"{type(exc).__name__}: {redact(str(exc))}"[:200]


@dataclass(frozen=True)
class JudgeConfidence:
    """Grades each answer with `provider`'s model; `fallback` answers when the judge cannot."""

    provider: Provider
    timeout_s: float = 10.0
    fallback: ConfidenceChecker = field(default_factory=DefaultConfidence)
    form: ConfidenceChecker = field(default_factory=lambda: AnswerSignalConfidence(FORM_SIGNALS))
    max_chars: int = 8000  # of the request and of the answer each, shown to the judge
    max_tokens: int = 300  # the explanation is short; the rating comes last

    async def acheck(self, request: ChatRequest, response: ChatResponse) -> Confidence:
        if not response.text.strip():
            return self._fall_back(request, response, "not asked, no text to grade")
        grading = grading_request(
            request, response, max_chars=self.max_chars, max_tokens=self.max_tokens
        )
        try:
            async with asyncio.timeout(self.timeout_s):
                reply = await self.provider.chat(grading)
        except Exception as exc:  # never into the worker: a failed judgement is a fallback
            return self._fall_back(request, response, f"call failed ({_why(exc)})", warn=True)
        rating = parse_rating(reply.text)
        if rating is None:
            shown = json.dumps(redact(reply.text[-80:]), ensure_ascii=False)
            why = f"no rating in 1..10 in the reply ...{shown}"
            return self._fall_back(request, response, why, warn=True)
        value = (rating - 1.0) / 9.0
        form = self.form.check(request, response)
        return Confidence(
            value=min(1.0, max(0.0, value * form.value)),
            signals=(f"{self._name}: rated {rating:g}/10 -> {value:.2f}", *form.signals),
        )

    @property
    def _name(self) -> str:
        return f"judge {self.provider.deployment.name}"

    def _fall_back(
        self, request: ChatRequest, response: ChatResponse, why: str, *, warn: bool = False
    ) -> Confidence:
        verdict = self.fallback.check(request, response)
        note = f"{self._name}: {why}; {type(self.fallback).__name__} used instead"
        if warn:  # the worker keeps only the value, so a judge that stopped working shows here
            log.warning("%s", note)
        return verdict.model_copy(update={"signals": (note, *verdict.signals)})
