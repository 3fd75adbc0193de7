"""How well a confidence checker tells good answers from bad, on outcome data that carries answers.

The tier worker escalates when the checker's value falls below a threshold; that is only worth
something if the value ranks good answers above bad ones. Outcome rows that carry each tier's
`answer` text (and whether it was good) measure exactly that: the AUROC of the checker's value for
"this answer is good" (quality >= 0.5), per checker. The default checker runs offline; the judge
calls its configured deployment, a few at a time, and is measured only when configured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx
from pydantic import BaseModel, ConfigDict

from parjanya.checkers import build_checker
from parjanya.confidence import aanswer_confidence, answer_confidence
from parjanya.config import ParjanyaConfig
from parjanya.learn.metrics import auroc
from parjanya.learn.outcomes import Outcome

__all__ = ["CheckerReport", "answered", "evaluate_checkers"]

JUDGE_CONCURRENCY = 8


class CheckerReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    checker: str
    data: str
    answers: int
    auroc: float

    def closing_line(self) -> str:
        value = "nan" if self.auroc != self.auroc else f"{self.auroc:.3f}"
        return f"eval checker={self.checker} auroc={value} answers={self.answers} data={self.data}"


def answered(outcomes: Sequence[Outcome]) -> list[tuple[str, str, bool]]:
    """(prompt, answer, good) for every tier result that carries its answer text."""
    return [
        (o.text, r.answer, r.quality >= 0.5)
        for o in outcomes
        for r in o.results.values()
        if r.answer is not None
    ]


async def _judge_values(rows: list[tuple[str, str, bool]], config: ParjanyaConfig) -> list[float]:
    gate = asyncio.Semaphore(JUDGE_CONCURRENCY)
    async with httpx.AsyncClient() as client:
        checker = build_checker(config, client)

        async def one(prompt: str, answer: str) -> float:
            async with gate:
                return (await aanswer_confidence(prompt, answer, checker)).value

        return list(await asyncio.gather(*(one(p, a) for p, a, _ in rows)))


def evaluate_checkers(
    outcomes: Sequence[Outcome], config: ParjanyaConfig, data: str
) -> list[CheckerReport]:
    rows = answered(outcomes)
    if not rows:
        return []
    labels = [good for _, _, good in rows]
    default = [answer_confidence(p, a).value for p, a, _ in rows]
    reports = [
        CheckerReport(checker="default", data=data, answers=len(rows), auroc=auroc(labels, default))
    ]
    if config.confidence.checker == "judge":
        judged = asyncio.run(_judge_values(rows, config))
        reports.append(
            CheckerReport(
                checker="judge", data=data, answers=len(rows), auroc=auroc(labels, judged)
            )
        )
    return reports
