"""The RabbitMQ section of the policy: how queues are declared when the broker is AMQP.

Read only when `PARJANYA_BROKER_URL` is `amqp://` (`broker/amqp.py`); a Redis broker ignores it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from parjanya.config.base import Strict


class AmqpConfig(Strict):
    """Queues on RabbitMQ: replicated, dead-lettered natively, published with confirms."""

    # quorum: replicated Raft queues (RabbitMQ 3.8+), with a delivery limit; classic: older servers.
    queue_type: Literal["quorum", "classic"] = "quorum"
    # A quorum queue dead-letters a message redelivered this often (x-delivery-limit): the
    # backstop under the store's own reliability.max_deliveries, so a message that kills its
    # consumer before the store sees it still cannot loop. Keep it above max_deliveries.
    # RabbitMQ counts every return (a crash returns a feeder's whole window); a feeder's
    # hand-back at a stop does not count, it publishes a copy (`worker/amqp_feeder.py`).
    delivery_limit: int = Field(default=10, ge=1)
    # Wait for the broker's confirm of every publish (a hop is on disk before the commit returns).
    confirm_publish: bool = True
    # Messages a feeder's own AMQP consumer holds unacked at once, per SLA class queue (its
    # prefetch window; never more than its pool's slots and backlog).
    feeder_prefetch: int = Field(default=128, ge=1, le=65_535)
