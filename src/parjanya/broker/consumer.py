"""Celery's consumer, except that messages it would drop or loop on are dead-lettered first.

Celery acks a body it cannot decode, and rejects (drops) messages of an unknown format or task
name: right not to loop, wrong to lose. Each hook records the message, then defers to Celery.

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

from parjanya.broker.amqp import Refusals, is_amqp, message_queue
from parjanya.broker.decode import DecodeLimits, Undecodable
from parjanya.broker.poison import divert
from parjanya.broker.transport import MAX_BYTES_OPTION, MAX_DEPTH_OPTION

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
                divert(_queue_of(message), exc.reason, message.body)
                _reject(message)
                return
            except Exception as exc:  # total: whatever the check did, the message is recorded
                divert(_queue_of(message), f"undecodable message ({type(exc).__name__})", b"")
                _reject(message)
                return
            handler(message)

        return on_task_received

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        divert(_queue_of(message), f"body could not be decoded: {exc}", message.body)
        if _refusals(self.app) is not None:
            _reject(message)
            return
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
