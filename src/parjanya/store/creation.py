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
from parjanya.schema import HopMessage, HopTiming, TaskRequest, TaskResult, TaskStatus, utcnow


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


def new_task_id() -> str:
    return uuid.uuid4().hex


def create_call(
    request: TaskRequest,
    *,
    requeue_after_s: float,
    idempotency_ttl_s: int,
    enqueue: Callable[[HopMessage], Enqueue | None],
    shadow_of: str | None = None,
) -> tuple[list[str], list[Any], bool]:
    """The keys and arguments of the CREATE script for a new task, and whether it enqueues."""
    task_id = new_task_id()
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
    idem_key = keys.idempotency(request.idempotency_key) if request.idempotency_key else ""
    # The producer's trace, if it has one, becomes the parent of the classifier hop's span.
    first = HopMessage(task_id=task_id, hop=0, stage="intake", traceparent=ambient_traceparent())
    message = enqueue(first)
    call_keys = [keys.task(task_id), keys.INFLIGHT, idem_key, message.queue if message else ""]
    call_args: list[Any] = [
        task_id,
        request.model_dump_json(),
        doc.model_dump_json(),
        time.time() + requeue_after_s,
        idempotency_ttl_s,
        fingerprint(request),
        message.payload if message else "",
    ]
    return call_keys, call_args, message is not None


def created_of(reply: list[Any], request: TaskRequest, enqueued: bool) -> Created:
    """CREATE's reply as a `Created`; a reused idempotency key with another body raises."""
    verdict, existing_id, same = (v.decode() if isinstance(v, bytes) else str(v) for v in reply)
    if verdict == "duplicate" and same != "1":
        raise IdempotencyConflict(request.idempotency_key or "", existing_id)
    created = verdict == "created"
    return Created(task_id=existing_id, created=created, enqueued=created and enqueued)
