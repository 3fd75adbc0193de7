"""Dead-lettering a task and replaying it: both compare-and-set moves in the store."""

from __future__ import annotations

from dataclasses import dataclass

from parjanya import results
from parjanya.broker.publish import HopPublisher
from parjanya.queues import Stage, dead_letter_queue_for
from parjanya.schema import (
    Attempt,
    DeadLetter,
    ErrorInfo,
    HopMessage,
    TaskResult,
    TaskStatus,
    utcnow,
)
from parjanya.store import TaskStore
from parjanya.worker import observe
from parjanya.worker.persist import retrying_blocking


def dead_letter(
    store: TaskStore,
    doc: TaskResult,
    *,
    token: str,
    hop: int,
    stage: Stage,
    error: ErrorInfo,
    within_s: float = 0.0,
) -> bool:
    """Move a held task to `dead_lettered` with its whole history, and list it on its DLQ.

    The write is retried through a store blip for up to `within_s` (the hop's lease, which its
    holder keeps renewing meanwhile; `worker/persist.py`), rather than leaving the hop to the
    reaper, which would run it again.
    """
    now = utcnow()
    results.record(
        doc,
        Attempt(
            hop=hop,
            stage=stage,
            outcome="dead_lettered",
            error_type=error.type,
            error=error.message,
            started_at=now,
            finished_at=now,
        ),
    )
    results.end(doc, hop, TaskStatus.dead_lettered, error)
    entry = DeadLetter(
        id=doc.id,
        queue=dead_letter_queue_for(stage),
        reason=error.message,
        task_id=doc.id,
        error=error,
        replays=doc.replays,
    )
    committed = retrying_blocking(
        lambda: store.transition(doc, token=token, hop=hop, stage=stage, dead_letter=entry),
        within_s,
    )
    if committed:
        store.count(f"dead_letters_{stage}")
        observe.ended(doc, stage)
        observe.dead_lettered(entry.queue)
    return bool(committed)


@dataclass(frozen=True)
class ReplayOutcome:
    task_id: str
    replayed: bool
    reason: str


def replay(
    store: TaskStore,
    publisher: HopPublisher,
    task_id: str,
    *,
    max_replays: int,
    requeue_after_s: float,
) -> ReplayOutcome:
    """Send a dead task back through the classifier on a new hop; its history is kept."""
    doc = store.get(task_id)
    where = store.hop_of(task_id)
    if doc is None or where is None:
        return ReplayOutcome(task_id, False, "no such task (raw dead letters cannot be replayed)")
    if doc.status != TaskStatus.dead_lettered:
        return ReplayOutcome(task_id, False, f"task is {doc.status.value}, not dead_lettered")
    hop, _ = where
    doc.replays += 1
    doc.error = None
    doc.finished_at = None
    doc.tier_path = []
    doc.escalations = 0
    results.open_hop(doc, hop + 1, "intake")
    new_hop = store.replay(
        task_id, doc, expected_hop=hop, max_replays=max_replays, requeue_after_s=requeue_after_s
    )
    if new_hop == -2:
        return ReplayOutcome(task_id, False, f"replayed {max_replays} times already")
    if new_hop < 0:
        return ReplayOutcome(task_id, False, "replayed concurrently by someone else")
    request = store.get_request(task_id)
    sla = request.sla.klass if request is not None else "standard"
    publisher.publish(HopMessage(task_id=task_id, hop=new_hop, stage="intake", sla=sla))
    store.count("replays")
    return ReplayOutcome(task_id, True, f"queued on hop {new_hop}")
