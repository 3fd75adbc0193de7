"""A judge deployment compares a shadow run's two answers (`routing.shadow_judge`).

Agreement (`learn/agreement.py`) is free but blunt on open prose: two right answers worded apart
disagree. A judge model can tell, so when `routing.shadow_judge` names a deployment it grades the
lower tier's answer with the higher tier's shown as the reference, in the manner of MT-bench's
reference-guided single-answer grading: a short explanation, then a rating from 1 to 10 written
as "[[N]]", read by the confidence judge's own tolerant parser (`judge.parse_rating`). The lower
tier's quality is (N - 1) / 9, a score in [0, 1] as the outcome format allows.

Answers that are tool calls carry no prose to grade, so they, and any judgement that fails (a
provider error, a timeout, a reply without a rating), are labelled by agreement instead, and the
rule says so: a shadow run's cost is already paid, and a label by the cheaper rule beats none.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from parjanya.judge import cut_text, grading_chat, parse_rating
from parjanya.learn.agreement import AnswerText, Comparison, agreement
from parjanya.providers.base import ChatRequest, Provider

log = logging.getLogger("parjanya.learning")

__all__ = ["REFERENCE_PROMPT", "JudgeComparator", "reference_request"]

REFERENCE_PROMPT = """[Instruction]
Act as an impartial judge of the response an AI assistant gave to the user request below. A \
reference answer from a stronger assistant is shown: judge whether the response reaches the same \
result as the reference (its final answer, the facts it relies on, what it does), not whether it \
is worded alike. Do not reward length or style. Begin with a short explanation, at most three \
sentences. Then rate the response on a scale of 1 to 10, strictly in this format: "[[rating]]", \
for example: "Rating: [[5]]".

[Request]
{question}

[The Start of the Reference Answer]
{reference}
[The End of the Reference Answer]

[The Start of the Assistant's Response]
{answer}
[The End of the Assistant's Response]"""


def reference_request(
    prompt: str, lower: str, higher: str, *, max_chars: int = 8000, max_tokens: int = 300
) -> ChatRequest:
    """What the judge is asked: the lower answer graded against the higher one."""
    text = REFERENCE_PROMPT.format(
        question=cut_text(prompt, max_chars),
        reference=cut_text(higher, max_chars),
        answer=cut_text(lower, max_chars),
    )
    return grading_chat(text, max_tokens)


@dataclass(frozen=True)
class JudgeComparator:
    """Grades the lower answer against the higher one with `provider`'s model."""

    provider: Provider
    timeout_s: float = 30.0  # off every caller's path: a shadow verdict may take its time

    @property
    def name(self) -> str:
        return f"judge {self.provider.deployment.name}"

    async def compare(self, prompt: str, lower: AnswerText, higher: AnswerText) -> Comparison:
        if lower.tool_calls or higher.tool_calls or not lower.text.strip():
            return agreement(lower, higher)
        try:
            async with asyncio.timeout(self.timeout_s):
                reply = await self.provider.chat(reference_request(prompt, lower.text, higher.text))
        except Exception as exc:  # a failed judgement is labelled by agreement, never lost
            return self._by_agreement(lower, higher, f"call failed ({type(exc).__name__})")
        rating = parse_rating(reply.text)
        if rating is None:
            return self._by_agreement(lower, higher, "no rating in 1..10")
        return Comparison((rating - 1.0) / 9.0, f"judge rated {rating:g}/10")

    def _by_agreement(self, lower: AnswerText, higher: AnswerText, why: str) -> Comparison:
        log.warning("%s: %s; labelled by agreement instead", self.name, why)
        verdict = agreement(lower, higher)
        return Comparison(verdict.quality, f"{verdict.rule} ({self.name}: {why})")
