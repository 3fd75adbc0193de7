"""Admission policy: SLA class weights on busy queues, deadline estimates, load shedding limits."""

from __future__ import annotations

from pydantic import Field, model_validator

from parjanya.config.base import Strict
from parjanya.queues import ALL_WORK_QUEUES, SLA_CLASSES, SlaClass


def _weights() -> dict[SlaClass, int]:
    return {"critical": 8, "standard": 3, "batch": 1}


def _shed_at() -> dict[SlaClass, float]:
    return {"batch": 0.6, "standard": 0.8, "critical": 1.0}


class QueueLimits(Strict):
    """How full one work queue may get: every class's messages counted together."""

    max_depth: int = Field(default=100_000, ge=1)
    max_age_s: float = Field(default=600.0, gt=0)  # of its oldest message


class AdmissionConfig(Strict):
    # A feeder fills free slots from a queue's class lists in these proportions (smooth weighted
    # round robin); a class with nothing queued gives its turns to the others, most urgent first.
    class_weights: dict[SlaClass, int] = Field(default_factory=_weights)
    # Deadlines: a tier is skipped when this quantile of its recent hop run times plus the median
    # recent queue wait of the task's class exceeds the time left; kept per tier in Redis.
    latency_quantile: float = Field(default=0.95, gt=0, le=1)
    latency_samples: int = Field(default=200, ge=10, le=10_000)
    # Load shedding: limits for every work queue, and per queue by name.
    limits: QueueLimits = Field(default_factory=QueueLimits)
    queue_limits: dict[str, QueueLimits] = Field(default_factory=dict)
    # A class is refused from this share of a queue's limits (on depth or oldest age, whichever is
    # fuller), and admitted again once the load falls below that share times `resume_ratio`.
    shed_at: dict[SlaClass, float] = Field(default_factory=_shed_at)
    resume_ratio: float = Field(default=0.8, gt=0, lt=1)
    check_interval_s: float = Field(default=0.5, gt=0)  # a producer re-reads the state this often
    retry_after_s: float = Field(default=5.0, gt=0)  # suggested to a refused producer

    @model_validator(mode="after")
    def _complete_and_ordered(self) -> AdmissionConfig:
        for name, table in (("class_weights", self.class_weights), ("shed_at", self.shed_at)):
            missing = [c for c in SLA_CLASSES if c not in table]
            if missing:
                raise ValueError(f"admission.{name} has no entry for {missing}")
        if any(weight < 1 for weight in self.class_weights.values()):
            raise ValueError("admission.class_weights must be at least 1 (0 would starve a class)")
        levels = [self.shed_at[c] for c in ("batch", "standard", "critical")]
        if levels != sorted(levels) or not all(0 < level <= 1 for level in levels):
            raise ValueError(
                "admission.shed_at must rise batch <= standard <= critical, each in (0, 1]"
            )
        unknown = [q for q in self.queue_limits if q not in ALL_WORK_QUEUES]
        if unknown:
            raise ValueError(f"admission.queue_limits names unknown queues {unknown}")
        return self

    def limits_for(self, queue: str) -> QueueLimits:
        return self.queue_limits.get(queue, self.limits)
