"""Publishing a hop's message through kombu: the store's outbox (`store/outbox.py`) calls it when
its own commit could not push the message (the store apart from the broker), and the reaper and
replay republish through it.

Messages are ordinary Celery protocol-2 task messages (built by `app.amqp.as_task_v2`), so any
Celery worker, Flower and `celery inspect` understand them. They are published with a kombu
producer kept per thread instead of `Celery.send_task`, which spends about three times the CPU
on routing, signals and pool checkout (bench/pipeline.py: 440 against 140 microseconds per message),
and a task costs two or three publishes.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any

from celery import Celery
from kombu import Producer

from parjanya.broker.amqp import Declares, declares_for, routing_key
from parjanya.broker.envelope import SENT_AT_HEADER
from parjanya.queues import CLASS_PRIORITY, queue_for, task_for
from parjanya.schema import HopMessage

_RETRY_POLICY = {"max_retries": 5, "interval_start": 0.1, "interval_step": 0.5, "interval_max": 2}


class _Producers(threading.local):
    """A producer per (thread, process, app): kombu channels are not shared across threads."""

    def __init__(self) -> None:
        self.by_app: dict[tuple[int, int], tuple[Any, Producer, Declares]] = {}


_producers = _Producers()


def _producer(app: Celery) -> tuple[Producer, Declares]:
    key = (os.getpid(), id(app))
    entry = _producers.by_app.get(key)
    if entry is None:
        connection = app.connection_for_write()
        entry = (connection, Producer(connection.default_channel), declares_for(app))
        _producers.by_app[key] = entry
    return entry[1], entry[2]


def publish_hop(app: Celery, message: HopMessage) -> None:
    """Send one hop. The store already says the hop is owed, so a lost publish is republished.

    Its SLA class is its kombu priority, so kombu's Redis transport puts it on the class's list;
    on RabbitMQ it is routed to the class's own queue (`broker/amqp.py`). A republish (reaper,
    replay, escalation) carries the hop's class, so it lands in the same class again.
    """
    queue = routing_key(app, queue_for(message.stage), message.sla)
    task = app.amqp.as_task_v2(
        uuid.uuid4().hex,
        task_for(message.stage),
        args=(message.model_dump(exclude_none=True),),
    )
    producer, declares = _producer(app)
    producer.publish(
        task.body,
        exchange="",
        routing_key=queue,
        headers={**task.headers, SENT_AT_HEADER: round(time.time(), 3)},
        serializer="json",
        retry=True,
        retry_policy=_RETRY_POLICY,
        priority=CLASS_PRIORITY[message.sla],
        declare=declares.get(queue),
        **task.properties,
    )
