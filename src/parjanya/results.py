"""Pure edits of a task's result document as it moves between hops: one place for each."""

from __future__ import annotations

from parjanya.queues import Stage
from parjanya.schema import Attempt, ErrorInfo, HopTiming, TaskResult, TaskStatus, utcnow


def start_hop(doc: TaskResult, hop: int) -> None:
    for timing in reversed(doc.timings):
        if timing.hop == hop:
            timing.started_at = timing.started_at or utcnow()
            return


def close_hop(doc: TaskResult, hop: int) -> None:
    for timing in reversed(doc.timings):
        if timing.hop == hop:
            timing.finished_at = utcnow()
            return


def open_hop(doc: TaskResult, hop: int, stage: Stage) -> None:
    doc.timings.append(HopTiming(hop=hop, stage=stage, queued_at=utcnow()))
    doc.status = TaskStatus.queued


def charge(doc: TaskResult) -> None:
    """Totals are always the sum of the attempts: every paid call is in the history."""
    doc.tokens_in = sum(a.tokens_in for a in doc.attempts)
    doc.tokens_out = sum(a.tokens_out for a in doc.attempts)
    doc.cost_usd = round(sum(a.cost_usd for a in doc.attempts), 10)


def end(doc: TaskResult, hop: int, status: TaskStatus, error: ErrorInfo | None = None) -> None:
    close_hop(doc, hop)
    charge(doc)
    doc.status = status
    doc.error = error
    doc.finished_at = utcnow()


def cancelled_at_boundary(doc: TaskResult) -> None:
    """The store ended the task `cancelled` where this hop asked for the next one (its cancel was
    requested while the hop ran): the doc in hand says so too, for the hop's observers and count."""
    doc.status = TaskStatus.cancelled
    doc.error = ErrorInfo(type="cancelled", message="cancelled by the caller")
    doc.finished_at = utcnow()


def record(doc: TaskResult, *attempts: Attempt) -> None:
    doc.attempts.extend(attempts)
