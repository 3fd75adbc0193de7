"""The outcome record of one answered task, and the labelled `Outcome` it gives when it has a label.

A record says how the task went (tier path, confidence, escalated or not, cost, latency) and what
was asked: the prompt itself only when `outcomes.keep_prompt` allows it, and never when the
classifier found PII in it unless `outcomes.keep_pii_prompt` does too; otherwise the prompt's
sha256 and the learned scorer's difficulty features, which `parjanya train` fits on when a row
has no text.

Everything in a record is derived from the task's result and request as the store holds them
(`learn/export.py` reads them), plus a shadow run's verdict from the outcome stream, so a record
is never a second copy that could disagree.

A record is *labelled* when two tiers answered the same prompt and were compared:
- a shadow run (`learn/shadow.py`): the comparator's verdict, the unbiased label;
- an escalation for low confidence: the lower tier's answer (kept in `previous_answers`) against
  the final one, by agreement. Biased (only doubted answers escalate), so it is marked not shadow
  and `parjanya outcomes export --shadow-only` leaves it out.
The higher tier's answer is taken as right (quality 1.0); the lower tier's quality is the verdict.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from parjanya.classify.difficulty import difficulty_features
from parjanya.config import OutcomesConfig
from parjanya.learn.agreement import AnswerText, agreement, tool_names
from parjanya.learn.outcomes import Outcome, TierResult
from parjanya.queues import Tier
from parjanya.schema import TaskRequest, TaskResult

__all__ = ["Label", "OutcomeRecord", "ShadowVerdict", "build_record", "to_outcome"]


class Label(BaseModel):
    """Two tiers' answers to one prompt, compared: the lower tier's quality, the higher's 1.0."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lower: Tier
    higher: Tier
    quality: float = Field(ge=0, le=1)
    lower_model: str | None = None
    higher_model: str | None = None
    lower_cost_usd: float = 0.0
    higher_cost_usd: float = 0.0
    rule: str
    comparator: str
    shadow: bool
    shadow_id: str | None = None


class OutcomeRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    task_id: str
    tenant: str | None = None
    finished_at: datetime | None = None
    routed_to: Tier | None = None  # the classifier's choice
    tier_path: list[Tier]
    answered_on: Tier | None = None
    model: str | None = None
    confidence: float | None = None
    low_confidence: bool = False
    escalated: bool = False
    cost_usd: float = 0.0
    latency_s: float | None = None  # from submission to the stored answer
    complexity: float | None = None
    scorer: str | None = None
    pii: list[str] = Field(default_factory=list)
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    prompt_sha256: str
    features: dict[str, float] | None = None
    label: Label | None = None


@dataclass(frozen=True)
class ShadowVerdict:
    """A finished shadow task and what the comparator said of the original's answer."""

    shadow: TaskResult
    quality: float
    rule: str
    comparator: str


def tier_cost(doc: TaskResult, tier: Tier) -> float:
    """What the calls on one tier cost (every paid call is an attempt in the history)."""
    return round(sum(a.cost_usd for a in doc.attempts if a.tier == tier), 10)


def text_features(request: TaskRequest) -> dict[str, float]:
    """The difficulty measures the learned scorer reads (`classify/difficulty.py`): what
    `parjanya train` fits on when a row carries no text."""
    return {name: float(value) for name, value in difficulty_features(request.text()).items()}


def _may_keep_prompt(doc: TaskResult, config: OutcomesConfig) -> bool:
    found_pii = bool(doc.complexity and doc.complexity.pii)
    return config.keep_prompt and (config.keep_pii_prompt or not found_pii)


def _label(doc: TaskResult, shadow: ShadowVerdict | None) -> Label | None:
    answered_on = doc.tier_path[-1] if doc.tier_path else None
    if answered_on is None:
        return None
    if shadow is not None and shadow.shadow.tier_path:
        higher = shadow.shadow.tier_path[-1]
        return Label(
            lower=answered_on,
            higher=higher,
            quality=shadow.quality,
            lower_model=doc.model,
            higher_model=shadow.shadow.model,
            lower_cost_usd=tier_cost(doc, answered_on),
            higher_cost_usd=tier_cost(shadow.shadow, higher),
            rule=shadow.rule,
            comparator=shadow.comparator,
            shadow=True,
            shadow_id=shadow.shadow.id,
        )
    if doc.escalations and doc.previous_answers and not doc.low_confidence:
        prior = doc.previous_answers[-1]
        verdict = agreement(
            AnswerText(prior.output), AnswerText(doc.output or "", tool_names(doc.tool_calls))
        )
        return Label(
            lower=prior.tier,
            higher=answered_on,
            quality=verdict.quality,
            lower_model=prior.model,
            higher_model=doc.model,
            lower_cost_usd=tier_cost(doc, prior.tier),
            higher_cost_usd=tier_cost(doc, answered_on),
            rule=verdict.rule,
            comparator="agreement",
            shadow=False,
        )
    return None


def build_record(
    doc: TaskResult,
    request: TaskRequest,
    config: OutcomesConfig,
    *,
    shadow: ShadowVerdict | None = None,
) -> OutcomeRecord:
    """The record of an answered task, with the prompt only as far as `config` allows."""
    text = request.text()
    keep = _may_keep_prompt(doc, config)
    latency = None
    if doc.finished_at is not None:
        latency = (doc.finished_at - doc.created_at).total_seconds()
    return OutcomeRecord(
        task_id=doc.id,
        tenant=doc.tenant,
        finished_at=doc.finished_at,
        routed_to=doc.routing.tier if doc.routing else None,
        tier_path=list(doc.tier_path),
        answered_on=doc.tier_path[-1] if doc.tier_path else None,
        model=doc.model,
        confidence=doc.confidence,
        low_confidence=doc.low_confidence,
        escalated=len(set(doc.tier_path)) > 1,
        cost_usd=doc.cost_usd,
        latency_s=latency,
        complexity=doc.complexity.score if doc.complexity else None,
        scorer=doc.complexity.scorer if doc.complexity else None,
        pii=list(doc.complexity.pii) if doc.complexity else [],
        prompt=text if keep and request.prompt is not None else None,
        messages=(
            [m.model_dump(include={"role", "content"}) for m in request.messages]
            if keep and request.messages is not None
            else None
        ),
        prompt_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        features=None if keep else text_features(request),
        label=_label(doc, shadow),
    )


def to_outcome(record: OutcomeRecord) -> Outcome | None:
    """The record as a row of the outcome format (`learn/outcomes.py`), if it is labelled."""
    label = record.label
    if label is None:
        return None
    return Outcome(
        prompt=record.prompt,
        messages=record.messages,
        prompt_sha256=record.prompt_sha256,
        features=record.features,
        source=f"parjanya/{record.tenant}" if record.tenant else "parjanya",
        results={
            label.lower: TierResult(
                quality=label.quality, model=label.lower_model, cost_usd=label.lower_cost_usd
            ),
            label.higher: TierResult(
                quality=1.0, model=label.higher_model, cost_usd=label.higher_cost_usd
            ),
        },
        shadow=label.shadow,
    )
