"""A stopping AMQP feeder hands back what it holds without burning the quorum delivery limit.

RabbitMQ counts every return of a message (a reject with requeue, a channel closed on it) toward
a quorum queue's `x-delivery-limit`. The feeder (`worker/amqp_feeder.py`) hands back by copy, so
a hop held during more stops than the limit is still queued, not dead-lettered as poison.
The broker is the RabbitMQ of `test_rabbitmq.py`, in a vhost of the test's own; it skips saying
why when none answers. Nothing is admitted: the feeder's dispatcher never has room.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kombu import Connection

from parjanya.app import create_app
from parjanya.broker.amqp import Refusals, declare_all
from parjanya.broker.decode import DecodeLimits
from parjanya.config import ParjanyaConfig, Settings
from parjanya.queues import SLA_CLASSES, TIER_TASK, class_list, dead_letter_queue_for, queue_for
from parjanya.worker.amqp_feeder import AmqpFeeder

from .test_rabbitmq import _depth, _drop_vhost, _new_vhost

pytestmark = pytest.mark.integration

LOW = queue_for("low")


class NoRoom:
    """An admission whose dispatcher is always full: the feeder only holds what it is sent."""

    queue = LOW
    admitted = 0
    ctx: Any = None

    def admit_hops(self, hops: list[Any]) -> int:
        raise AssertionError("nothing is admitted without room")


def test_hops_held_through_more_stops_than_the_delivery_limit_stay_queued() -> None:
    url = _new_vhost()
    try:
        config = ParjanyaConfig.model_validate({"amqp": {"delivery_limit": 2}})
        app = create_app(Settings(broker_url=url, result_url="redis://127.0.0.1:1/0"), config)
        with app.connection_for_write() as connection:
            declare_all(connection, config.amqp)
        with Connection(url, transport_options={"confirm_publish": True}) as connection:
            producer = connection.Producer()
            for n in range(3):
                hop = {"task_id": f"{n:032x}", "hop": 1, "stage": "low", "sla": "critical"}
                producer.publish(
                    json.dumps([[hop], {}, {}]),
                    routing_key=LOW,
                    headers={"task": TIER_TASK, "parjanya_sent_at": 1.0},
                    content_type="application/json",
                    content_encoding="utf-8",
                )
        queues = {sla: app.amqp.queues[class_list(LOW, sla)] for sla in SLA_CLASSES}
        for _ in range(4):  # four stops, each handing back all three: twice the limit
            feeder = AmqpFeeder(
                app,
                queues,
                NoRoom(),  # type: ignore[arg-type]
                Refusals(DecodeLimits()),
                room=lambda wanted: 0,
                idle_wait_s=0.1,
            )
            feeder.start()
            deadline = time.monotonic() + 15
            while feeder.pending < 3:
                assert time.monotonic() < deadline, f"the feeder holds {feeder.pending} of 3"
                time.sleep(0.05)
            feeder.stop(wait=True)
        assert _depth(url, dead_letter_queue_for("low")) == 0  # none dead-lettered as poison
        assert _depth(url, LOW) == 3
        with Connection(url) as connection:
            message = connection.default_channel.basic_get(LOW, no_ack=True)
            assert message is not None
            assert (message.headers or {}).get("x-delivery-count", 0) == 0
            assert message.headers["parjanya_sent_at"] == 1.0  # its original date kept
    finally:
        _drop_vhost(url)
