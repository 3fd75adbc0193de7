"""A new task's first write: its id, its first document, and the CREATE script's keys and arguments.

Shared by the blocking store (`tasks.TaskStore.create`, the SDK) and the asyncio one
(`aio.AsyncTaskStore.create`, the HTTP API), so both write exactly the same task.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from parjanya import keys
from parjanya.broker.envelope import Enqueue
from parjanya.observe.tracing import ambient_traceparent
from parjanya.schema import (
    ErrorInfo,
    HopMessage,
    HopTiming,
    TaskRequest,
    TaskResult,
    TaskStatus,
    utcnow,
)


class IdempotencyConflict(Exception):
    """The idempotency key was used before with a different request body (HTTP 409)."""

    def __init__(self, key: str, task_id: str) -> None:
        super().__init__(
            f"idempotency_key {key!r} was already used for task {task_id} with a different request"
        )
        self.key = key
        self.task_id = task_id


@dataclass(frozen=True)
class Created:
    task_id: str
    created: bool  # False: an earlier submission with the same idempotency key is returned
    enqueued: bool = False  # True: the intake message was pushed in the same step


def fingerprint(request: TaskRequest) -> str:
    body = request.model_dump_json(exclude={"idempotency_key"})
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def new_task_id(shard: int | None = None) -> str:
    """A fresh id; in store shard `shard` if given (drawn again until it lands there: about
    `keys.SHARDS` draws, a few microseconds), so a task can share its idempotency key's shard."""
    while True:
        task_id = uuid.uuid4().hex
        if shard is None or keys.shard_of(task_id) == shard:
            return task_id


def create_call(
    request: TaskRequest,
    *,
    requeue_after_s: float,
    idempotency_ttl_s: int,
    enqueue: Callable[[HopMessage], Enqueue | None],
    shadow_of: str | None = None,
) -> tuple[list[str], list[Any], bool]:
    """The keys and arguments of the CREATE script for a new task, and whether it enqueues.

    A task with an idempotency key is given an id in that key's shard: one CREATE reads the key
    and writes the task, so both must be in one Redis Cluster hash slot.
    """
    idem = request.idempotency_key
    task_id = new_task_id(keys.shard_of(idem) if idem else None)
    now = utcnow()
    doc = TaskResult(
        id=task_id,
        status=TaskStatus.queued,
        tenant=request.tenant,
        metadata=request.metadata,
        created_at=now,
        timings=[HopTiming(hop=0, stage="intake", queued_at=now)],
        shadow_of=shadow_of,
    )
    # The producer's trace, if it has one, becomes the parent of the classifier hop's span.
    first = HopMessage(
        task_id=task_id,
        hop=0,
        stage="intake",
        sla=request.sla.klass,
        traceparent=ambient_traceparent(),
    )
    message = enqueue(first)
    deadline_at = 0.0 if request.deadline_s is None else time.time() + request.deadline_s
    call_keys = [
        keys.task(task_id),
        keys.inflight(keys.shard_of(task_id)),
        keys.idempotency(idem) if idem else keys.unused(task_id),
        message.queue if message else keys.unused(task_id),
    ]
    call_args: list[Any] = [
        task_id,
        request.model_dump_json(),
        doc.model_dump_json(),
        time.time() + requeue_after_s,
        idempotency_ttl_s,
        fingerprint(request) if idem else "",  # read only under an idempotency key
        message.payload if message else "",
        request.sla.klass,
        deadline_at,
        request.callback_url or "",
    ]
    return call_keys, call_args, message is not None


def created_of(
    reply: list[Any], request: TaskRequest, call_args: list[Any], enqueued: bool
) -> Created:
    """CREATE's reply as a `Created`; a reused idempotency key with another body raises.

    A "duplicate" naming the id this very call chose is this call's own write, seen again when a
    lost reply made the client repeat it (a reconnect, a failover of the store): it was created
    here, and its intake message pushed with it if it was to be.
    """
    verdict, existing_id, same = (v.decode() if isinstance(v, bytes) else str(v) for v in reply)
    if verdict == "duplicate" and same != "1":
        raise IdempotencyConflict(request.idempotency_key or "", existing_id)
    created = verdict == "created" or existing_id == call_args[0]
    return Created(task_id=existing_id, created=created, enqueued=created and enqueued)


def result_of(state: bytes | str, doc: bytes | str) -> TaskResult:
    """A stored doc with the hash's `state` as the truth about its status (read by both stores).

    CLAIM, TRANSITION and REAP end a task `cancelled` or `expired` without rewriting its doc, so
    its error is named here, as CANCEL names a queued task's.
    """
    result = TaskResult.model_validate_json(doc)
    result.status = TaskStatus(state.decode() if isinstance(state, bytes) else state)
    if result.status == TaskStatus.expired and result.error is None:
        result.error = ErrorInfo(type="expired", message="deadline_s passed before an answer")
    elif result.status == TaskStatus.cancelled and result.error is None:
        result.error = ErrorInfo(type="cancelled", message="cancelled by the caller")
    return result
