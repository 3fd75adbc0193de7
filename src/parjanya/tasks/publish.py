"""The one place that puts a hop on a queue."""

from __future__ import annotations

from celery import Celery

from parjanya.queues import INTAKE_TASK, TIER_TASK, queue_for
from parjanya.schema import HopMessage


def publish_hop(app: Celery, message: HopMessage) -> None:
    """Send one hop. The store already says the hop is owed, so a lost publish is republished."""
    app.send_task(
        INTAKE_TASK if message.stage == "intake" else TIER_TASK,
        args=[message.model_dump()],
        queue=queue_for(message.stage),
        routing_key=queue_for(message.stage),
        exchange="",
        retry=True,
        retry_policy={"max_retries": 5, "interval_start": 0.1, "interval_step": 0.5},
    )
