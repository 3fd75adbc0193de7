"""Celery's consumer, except that messages it would drop are dead-lettered first.

Celery acks a body it cannot decode, and rejects (drops) messages of an unknown format or task
name: right not to loop, wrong to lose. Each hook records the message, then defers to Celery.
"""

from __future__ import annotations

from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer

from parjanya.broker.poison import divert


def _queue_of(message: Any) -> str | None:
    info = getattr(message, "delivery_info", None) or {}
    queue = info.get("routing_key") or info.get("queue")
    return str(queue) if queue else None


class Consumer(CeleryConsumer):
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
