"""Celery's consumer, except that messages it would drop or loop on are dead-lettered first.

Celery acks a body it cannot decode, and rejects (drops) messages of an unknown format or task
name: right not to loop, wrong to lose. Each hook records the message, then defers to Celery.

A queue handed to a batch feeder (`hand_to_feeder`, worker/lifecycle.py) is no longer Celery's to
consume, but the worker still serves it: `active_queues` (Celery's remote-control answer, which
Flower's Workers page and `celery inspect active_queues` show) lists it beside the queues Celery's
consumer reads, so a tier pool does not look idle while its feeder serves the tier queue.

On RabbitMQ there is no Parjanya transport in front of Celery (on Redis, `broker.transport` checks
every list entry), and Celery's protocol 2 decodes a body only in the pool: a body that fails
there raises out of the consumer, and the unacked message comes back for ever. So on an AMQP
broker every message on a work queue is checked first (`broker.amqp.Refusals`); one that is not a
hop is recorded in the store and rejected, which RabbitMQ dead-letters to `parjanya.dlq.<stage>`
(`x-dead-letter-exchange`). A decode error is rejected there too, instead of acked and lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.control import inspect_command
from kombu import Queue

from parjanya.broker.amqp import Refusals, is_amqp, message_queue
from parjanya.broker.decode import DecodeLimits, Undecodable
from parjanya.broker.poison import RawDeadLetters, from_settings
from parjanya.broker.transport import MAX_BYTES_OPTION, MAX_DEPTH_OPTION
from parjanya.queues import class_lists

log = logging.getLogger("parjanya.poison")

_queue_of = message_queue


def _refusals(app: Any) -> Refusals | None:
    """The AMQP guard, or None where the transport already checks (Redis). Decided once."""
    if not is_amqp(app.conf.broker_url or ""):
        return None
    options = app.conf.broker_transport_options or {}
    default = DecodeLimits()
    return Refusals(
        DecodeLimits(
            max_bytes=int(options.get(MAX_BYTES_OPTION, default.max_bytes)),
            max_depth=int(options.get(MAX_DEPTH_OPTION, default.max_depth)),
        )
    )


def _reject(message: Any) -> None:
    """Reject without requeue: RabbitMQ dead-letters it natively (never raises)."""
    try:
        message.reject(requeue=False)
    except Exception:
        log.exception("could not reject a poison message; the broker will redeliver it")


_CeleryBlueprint: Any = CeleryConsumer.Blueprint


class Consumer(CeleryConsumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Queues a batch feeder serves in this consumer's place, by name (kept across reconnects).
        self.fed_queues: dict[str, Queue] = {}
        self._dead_letters: RawDeadLetters | None = None

    def divert(self, message: Any, reason: str, raw: object) -> None:
        """Record a message Celery would drop or loop on (a sink built on first use; never raises)."""
        if self._dead_letters is None:
            try:
                self._dead_letters = from_settings()
            except Exception:
                log.exception("no dead-letter store for a poison message (%s)", reason)
                return
        self._dead_letters.divert(_queue_of(message), reason, raw)

    def hand_to_feeder(self, queue: str) -> None:
        """Stop consuming `queue` here (a feeder pops it), and go on reporting it as served.

        On RabbitMQ that is each of its class queues (`broker/amqp.py`), all the feeder's."""
        served = served_queues(self)
        declared = next((q for q in served if q.name == queue), None)
        self.fed_queues[queue] = declared or self.app.amqp.queues[queue]
        classes = set(class_lists(queue)) - {queue}
        for name in [queue, *(q.name for q in served if q.name in classes)]:
            self.cancel_task_queue(name)

    class Blueprint(_CeleryBlueprint):  # type: ignore[misc]
        """Celery's consumer steps without native delayed delivery.

        On a broker with quorum queues Celery declares 28 `celery_delayed_*` queues and exchanges
        for ETA and countdown tasks, and warns that it cannot bind Parjanya's queues (they are on
        the default exchange). Parjanya sends neither: a hop is due when it is published.
        """

        default_steps = [
            step for step in _CeleryBlueprint.default_steps if not step.endswith(":DelayedDelivery")
        ]

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Callable[[Any], None]:
        handler: Callable[[Any], None] = super().create_task_handler(*args, **kwargs)
        refusals = _refusals(self.app)
        if refusals is None:
            return handler

        def on_task_received(message: Any) -> None:
            try:
                refusals.hop(message)
            except Undecodable as exc:
                self.divert(message, exc.reason, message.body)
                _reject(message)
                return
            except Exception as exc:  # total: whatever the check did, the message is recorded
                self.divert(message, f"undecodable message ({type(exc).__name__})", b"")
                _reject(message)
                return
            handler(message)

        return on_task_received

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        self.divert(message, f"body could not be decoded: {exc}", message.body)
        if _refusals(self.app) is not None:
            _reject(message)
            return
        super().on_decode_error(message, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self.divert(message, "not a Celery task message", message.body)
        super().on_unknown_message(body, message)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        self.divert(message, f"unknown task: {exc}", message.body)
        super().on_unknown_task(body, message, exc)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        self.divert(message, f"invalid task message: {exc}", message.body)
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
