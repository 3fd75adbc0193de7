"""One record per hop, and the observers it is told to.

A hop is the unit ops watch: the classifier's (stage `intake`) or a tier's. `HopStart` is what is
known when it begins (task id, hop number, stage, tenant), `HopEnd` adds how it ended (outcome,
model, milliseconds). Neither has a field for prompt or answer text, so no observer can leak one.

Observers (structured logs, Celery task events for Flower, tracing) know nothing of each other;
`HopObservers` tells each in turn and logs, never raises, what one of them throws: watching a hop
must not change how it ends (dramatiq's middleware rule).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from parjanya.queues import Stage, queue_for
from parjanya.schema import TaskResult, TaskStatus

log = logging.getLogger("parjanya.observe")


@dataclass(frozen=True, slots=True)
class HopStart:
    task_id: str
    hop: int
    stage: Stage
    tenant: str | None = None
    #: W3C `traceparent` the hop's message carried, if tracing is on (`observe/tracing.py`).
    traceparent: str | None = None

    @property
    def name(self) -> str:
        """The hop's readable name: its queue, `parjanya.intake` or `parjanya.tier.<tier>`."""
        return queue_for(self.stage)

    @property
    def tier(self) -> str | None:
        return None if self.stage == "intake" else self.stage

    @property
    def uuid(self) -> str:
        """One id per hop (`<task id>.<hop>`): hops of one task differ, and sort in order."""
        return f"{self.task_id}.{self.hop}"


@dataclass(frozen=True, slots=True)
class HopEnd:
    start: HopStart
    #: finished, routed, escalated, dead_lettered, failed, cancelled, skipped, interrupted, error
    outcome: str
    ms: float
    model: str | None = None
    error_type: str | None = None

    @property
    def ok(self) -> bool:
        """The hop did its job (an answer, a route, an escalation), whatever the task's fate."""
        return self.outcome in ("finished", "routed", "escalated")


#: How a hop ended, read from the task's status once the hop returned.
_BY_STATUS: dict[TaskStatus, str] = {
    TaskStatus.succeeded: "finished",
    TaskStatus.dead_lettered: "dead_lettered",
    TaskStatus.failed: "failed",
    TaskStatus.cancelled: "cancelled",
}


def outcome_of(doc: TaskResult | None, hop: int, stage: Stage) -> tuple[str, str | None]:
    """The outcome of hop `hop` and the model it last called, from the task document it left.

    A hop that opened the next one routed (classifier) or escalated (tier); one whose task is
    still held was interrupted (the store went away: the reaper brings it back).
    """
    if doc is None:
        return "skipped", None
    model = next((a.model for a in reversed(doc.attempts) if a.hop == hop and a.model), None)
    outcome = _BY_STATUS.get(doc.status)
    if outcome is not None:
        return outcome, model
    if doc.status == TaskStatus.queued and any(t.hop > hop for t in doc.timings):
        return ("routed" if stage == "intake" else "escalated"), model
    return "interrupted", model


class HopObserver(Protocol):
    def started(self, hop: HopStart) -> None: ...

    def ended(self, hop: HopEnd) -> None: ...


@dataclass
class HopObservers:
    """Every observer of this process's hops, told in order; one that fails is logged and skipped."""

    observers: list[HopObserver] = field(default_factory=list)

    def add(self, observer: HopObserver) -> None:
        self.observers.append(observer)

    def started(self, hop: HopStart) -> None:
        for observer in self.observers:
            try:
                observer.started(hop)
            except Exception:
                log.exception("hop observer %s failed", type(observer).__name__)

    def ended(self, hop: HopEnd) -> None:
        for observer in self.observers:
            try:
                observer.ended(hop)
            except Exception:
                log.exception("hop observer %s failed", type(observer).__name__)
