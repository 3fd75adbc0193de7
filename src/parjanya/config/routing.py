"""Routing policy: the five weights, the tier thresholds, SLA floors, the scorer, shadow runs."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from parjanya.config.base import Strict
from parjanya.queues import TIERS, Tier


class Weights(Strict):
    structural: float = 0.25
    cognitive: float = 0.25
    context: float = 0.20
    ambiguity: float = 0.15
    risk: float = 0.15

    @model_validator(mode="after")
    def _sum_to_one(self) -> Weights:
        total = self.structural + self.cognitive + self.context + self.ambiguity + self.risk
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"complexity weights must sum to 1.0, not {total:.4f}")
        return self


class Thresholds(Strict):
    """Score cut points: score <= low goes low, <= mid goes mid, above goes high."""

    low: float = Field(default=3.5, ge=1, le=10)
    mid: float = Field(default=6.5, ge=1, le=10)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.low >= self.mid:
            raise ValueError("thresholds.low must be below thresholds.mid")
        return self


class SlaPolicy(Strict):
    min_tier: Tier | None = None
    max_tier: Tier | None = None


class RoutingConfig(Strict):
    weights: Weights = Field(default_factory=Weights)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    max_escalations: int = Field(default=1, ge=0, le=len(TIERS) - 1)
    sla: dict[str, SlaPolicy] = Field(
        default_factory=lambda: {
            "critical": SlaPolicy(min_tier="mid"),
            "standard": SlaPolicy(),
            "batch": SlaPolicy(),
        }
    )
    # With PII detected: `record` it only, `redact` it before it leaves (placeholders restored in the
    # answer), or send it to `private` deployments only (governance/privacy.py).
    pii_action: Literal["record", "redact", "private"] = "record"
    expected_output_tokens: int = Field(default=512, ge=1)  # for budget estimates before a call
    # Which scorer turns a request into its 1-10 score (classify/scorer.py): `learned` reads
    # `scorer_model`, or the bundled model fitted to public outcomes when that is null.
    scorer: Literal["learned", "heuristic"] = "learned"
    scorer_model: Path | None = None
    heuristic_points: Path | None = None  # fitted term points; null: the hand-set table
    # This share of tasks answered below the top tier is run again on the next tier up, billed and
    # marked as a shadow, never returned to the caller; the two answers give a labelled outcome.
    shadow_rate: float = Field(default=0.0, ge=0, le=1)
    # Compare shadow answers with this judge deployment instead of by agreement (learn/judging.py).
    shadow_judge: str | None = None
