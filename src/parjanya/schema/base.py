"""What every model of the schema shares: strictness, the clock, the task and SLA enums, and JSON.

Models are strict about unknown fields: a typo in an option (`max_teir`) must be an error, not a
silently ignored setting.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
)

from parjanya.queues import SlaClass


def utcnow() -> datetime:
    return datetime.now(UTC)


class Sla(StrEnum):
    critical = "critical"  # user-facing or business-critical: never the cheapest tier
    standard = "standard"
    batch = "batch"  # throughput over latency: cheapest capable tier, no rush

    @property
    def klass(self) -> SlaClass:
        """The same value typed as the queues' class (`queues.SlaClass`)."""
        return self.value


class TaskStatus(StrEnum):
    queued = "queued"  # accepted and waiting on a queue (intake or a tier)
    classifying = "classifying"  # a classifier worker holds it
    running = "running"  # a tier worker holds it and is calling a model
    succeeded = "succeeded"  # terminal: an answer is stored (maybe flagged low_confidence)
    dead_lettered = "dead_lettered"  # terminal until replayed: failed everywhere, history kept
    failed = "failed"  # terminal: refused by policy (e.g. no tier fits the budget); not replayable
    cancelled = "cancelled"  # terminal: the caller cancelled it; no further hop runs or is billed
    expired = "expired"  # terminal: its deadline_s passed (or could not be met) before an answer

    @property
    def terminal(self) -> bool:
        return self in (
            TaskStatus.succeeded,
            TaskStatus.dead_lettered,
            TaskStatus.failed,
            TaskStatus.cancelled,
            TaskStatus.expired,
        )


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def dump_json(model: BaseModel) -> str:
    return model.model_dump_json(exclude_none=False)


def jsonable(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")
