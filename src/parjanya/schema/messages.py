"""What travels between pools and ends in the dead-letter store: hop pointers and dead letters.

A hop message carries only `(task_id, hop, stage, sla)`: the request and the result live in the
store, so a redelivered or republished message never carries stale data."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import (
    Field,
)

from parjanya.queues import SlaClass
from parjanya.schema.base import Strict, utcnow
from parjanya.schema.result import ErrorInfo


class HopMessage(Strict):
    """The body of every Parjanya Celery message: a pointer into the store, never the payload.

    Keeping the request in the store (written once, before the first publish) means a redelivered or
    republished message can never carry stale data, and messages stay tiny on the broker.
    """

    task_id: str = Field(min_length=1, max_length=64)
    hop: int = Field(ge=0)
    stage: Literal["intake", "low", "mid", "high"]
    # The task's SLA class: which of the queue's class lists the hop goes on (queues.class_list).
    sla: SlaClass = "standard"
    # W3C trace context of the hop that sent this one, when tracing is on (observe/tracing.py).
    # Left out of the message when None, so messages without tracing are unchanged on the wire.
    traceparent: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
    )


class DeadLetter(Strict):
    """One entry of the dead-letter store: a failed task, or a message that could not be read."""

    id: str
    queue: str
    reason: str
    task_id: str | None = None
    error: ErrorInfo | None = None
    raw: str | None = None  # the undecodable body (truncated) when there is no task behind it
    dead_at: datetime = Field(default_factory=utcnow)
    replays: int = 0
