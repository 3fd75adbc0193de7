"""The hop scripts' calls and replies: the keys and arguments of CLAIM, HEARTBEAT, TRANSITION, REAP
and CANCEL, and what REAP says is owed (the typed verdicts of CLAIM, TRANSITION and CANCEL are in
`verdicts.py`).

Kept apart from `tasks.TaskStore`, which runs them, so the blocking store and any caller that
batches its round trips (`store/batch.py`: the tier worker's finished hops) build exactly the
same call, and so each script's key order is written down once, beside its reply. Every call's
keys are the task's and its shard's (`keys.shard_of`), in one Redis Cluster hash slot
(tests/unit/test_store_slots.py checks each builder).
"""

from __future__ import annotations

from typing import Any

from parjanya import keys
from parjanya.broker.envelope import Enqueue
from parjanya.queues import Stage, dead_letter_queue_for
from parjanya.schema import (
    DeadLetter,
    ErrorInfo,
    HopMessage,
    TaskResult,
    TaskStatus,
    utcnow,
)
from parjanya.store.batch import ScriptCall
from parjanya.store.creation import result_of


def text(value: Any) -> str:
    """A Redis reply field as text (clients may or may not decode responses)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def claim_call(
    message: HopMessage,
    *,
    now: float,
    holding: TaskStatus,
    lease_ttl_s: float,
    max_deliveries: int,
    expired_ttl_s: int,
) -> ScriptCall:
    shard = keys.shard_of(message.task_id)
    return (
        [
            keys.task(message.task_id),
            keys.inflight(shard),
            keys.done(message.task_id),
            keys.counters(shard),
            keys.webhook_outbox(shard),
        ],
        [
            message.task_id,
            message.hop,
            message.stage,
            now,
            lease_ttl_s,
            max_deliveries,
            holding.value,
            expired_ttl_s,
        ],
    )


def heartbeat_call(task_id: str, token: str, until: float) -> ScriptCall:
    return [keys.task(task_id), keys.inflight(keys.shard_of(task_id))], [task_id, token, until]


def transition_call(
    doc: TaskResult,
    *,
    now: float,
    token: str,
    hop: int,
    stage: Stage,
    deadline_s: float = 0.0,
    ttl_s: int = 0,
    dead_letter: DeadLetter | None = None,
    enqueue: Enqueue | None = None,
    dead_letter_list: bool = True,
) -> ScriptCall:
    """TRANSITION's call. `dead_letter_list`: copy a dead letter onto its stage's dead-letter
    list too (a plain Redis only: that list is in no task's hash slot)."""
    entry = "" if dead_letter is None else dead_letter.model_dump_json()
    shard = keys.shard_of(doc.id)
    return (
        [
            keys.task(doc.id),
            keys.inflight(shard),
            keys.done(doc.id),
            dead_letter_queue_for(stage) if dead_letter_list else keys.unused(doc.id),
            keys.dead_letter_index(shard),
            keys.dead_letter(doc.id),
            enqueue.queue if enqueue else keys.unused(doc.id),
            keys.webhook_outbox(shard),
        ],
        [
            doc.id,
            token,
            doc.status.value,
            hop,
            stage,
            doc.model_dump_json(),
            now + deadline_s,
            ttl_s,
            entry,
            now,
            enqueue.payload if enqueue else "",
            "1" if dead_letter_list else "",
        ],
    )


def reap_call(
    task_id: str, *, now: float, requeue_after_s: float, expired_ttl_s: int
) -> ScriptCall:
    shard = keys.shard_of(task_id)
    return (
        [
            keys.task(task_id),
            keys.inflight(shard),
            keys.done(task_id),
            keys.counters(shard),
            keys.webhook_outbox(shard),
        ],
        [task_id, now, requeue_after_s, expired_ttl_s],
    )


def expired_of(reply: list[Any]) -> tuple[TaskResult, Stage] | None:
    """The task REAP ended `expired`, as it ended, and the stage it waited on; else None."""
    if text(reply[0]) != "expired" or len(reply) < 3:
        return None
    ended = result_of("expired", reply[2])
    if ended.finished_at is None:
        ended.finished_at = utcnow()
    return ended, text(reply[1])  # type: ignore[return-value]


def owed_of(task_id: str, reply: list[Any]) -> HopMessage | None:
    """The hop REAP says to republish, in its task's SLA class; None if nothing is owed."""
    if text(reply[0]) != "republish":
        return None
    return HopMessage(task_id=task_id, hop=int(reply[1]), stage=text(reply[2]), sla=text(reply[4]))


def cancel_call(task_id: str, hop: Any, token: Any, doc: bytes | str, ttl_s: int) -> ScriptCall:
    """CANCEL of the task as read (`hop`, `token`, `doc`): it writes only if both are unchanged."""
    result = TaskResult.model_validate_json(doc)
    result.status = TaskStatus.cancelled
    result.error = ErrorInfo(type="cancelled", message="cancelled by the caller")
    result.finished_at = utcnow()
    shard = keys.shard_of(task_id)
    return (
        [keys.task(task_id), keys.inflight(shard), keys.done(task_id), keys.webhook_outbox(shard)],
        [task_id, text(hop), text(token), result.model_dump_json(), ttl_s],
    )
