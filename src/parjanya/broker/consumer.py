"""Celery's consumer, except that messages it would drop are dead-lettered first.

Celery acks a body it cannot decode, and rejects (drops) messages of an unknown format or task
name: right not to loop, wrong to lose. Each hook records the message, then defers to Celery.

A queue handed to a batch feeder (`hand_to_feeder`, worker/lifecycle.py) is no longer Celery's to
consume, but the worker still serves it: `active_queues` (Celery's remote-control answer, which
Flower's Workers page and `celery inspect active_queues` show) lists it beside the queues Celery's
consumer reads, so a tier pool does not look idle while its feeder serves the tier queue.
"""

from __future__ import annotations

from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.control import inspect_command
from kombu import Queue

from parjanya.broker.poison import divert


def _queue_of(message: Any) -> str | None:
    info = getattr(message, "delivery_info", None) or {}
    queue = info.get("routing_key") or info.get("queue")
    return str(queue) if queue else None


class Consumer(CeleryConsumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Queues a batch feeder serves in this consumer's place, by name (kept across reconnects).
        self.fed_queues: dict[str, Queue] = {}

    def hand_to_feeder(self, queue: str) -> None:
        """Stop consuming `queue` here (a feeder pops it), and go on reporting it as served."""
        declared = next((q for q in served_queues(self) if q.name == queue), None)
        self.fed_queues[queue] = declared or self.app.amqp.queues[queue]
        self.cancel_task_queue(queue)

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        divert(_queue_of(message), f"body could not be decoded: {exc}", message.body)
        super().on_decode_error(message, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        divert(_queue_of(message), "not a Celery task message", message.body)
        super().on_unknown_message(body, message)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        divert(_queue_of(message), f"unknown task: {exc}", message.body)
        super().on_unknown_task(body, message, exc)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        divert(_queue_of(message), f"invalid task message: {exc}", message.body)
        super().on_invalid_task(body, message, exc)


def served_queues(consumer: Any) -> list[Queue]:
    """The queues this worker serves: those Celery's consumer reads, then those fed in its place."""
    task_consumer = getattr(consumer, "task_consumer", None)
    consumed: list[Queue] = list(task_consumer.queues) if task_consumer is not None else []
    names = {q.name for q in consumed}
    fed = getattr(consumer, "fed_queues", {})
    return consumed + [q for name, q in fed.items() if name not in names]


@inspect_command(name="active_queues")
def active_queues(state: Any) -> list[dict[str, Any]]:
    """List the task queues this worker serves, through Celery's consumer or a batch feeder."""
    return [dict(queue.as_dict(recurse=True)) for queue in served_queues(state.consumer)]
