"""The one place that puts a hop on a queue: inside the store's commit, or by kombu after it.

Messages are ordinary Celery protocol-2 task messages (built by `app.amqp.as_task_v2`), so any
Celery worker, Flower and `celery inspect` understand them. They are published with a kombu
producer kept per thread instead of `Celery.send_task`, which spends about three times the CPU
on routing, signals and pool checkout (bench/pipeline.py: 440 against 140 microseconds per message),
and a task costs two or three publishes.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from typing import Any

from celery import Celery
from kombu import Producer

from parjanya.broker.amqp import Declares, declares_for
from parjanya.broker.envelope import Enqueue, HopEnvelopes, shares_one_redis
from parjanya.queues import queue_for, task_for
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
    """Send one hop. The store already says the hop is owed, so a lost publish is republished."""
    queue = queue_for(message.stage)
    task = app.amqp.as_task_v2(
        uuid.uuid4().hex,
        task_for(message.stage),
        args=(message.model_dump(),),
    )
    producer, declares = _producer(app)
    producer.publish(
        task.body,
        exchange="",
        routing_key=queue,
        headers=task.headers,
        serializer="json",
        retry=True,
        retry_policy=_RETRY_POLICY,
        declare=declares.get(queue),
        **task.properties,
    )


class Outbox:
    """Hands the next hop to its queue as part of the commit that makes it owed.

    When the store and the broker share one Redis database, `message_for` gives the message the
    store's commit script pushes itself (`broker.envelope`); otherwise it gives None and
    `hand_off` publishes through kombu once the commit has succeeded (a publish lost between
    the two is republished by the reaper, since the store already says the hop is owed).
    """

    def __init__(self, app: Celery, store_url: str) -> None:
        self.app = app
        self._envelopes = HopEnvelopes(app) if shares_one_redis(store_url, app) else None

    def message_for(self, message: HopMessage) -> Enqueue | None:
        return None if self._envelopes is None else self._envelopes.for_hop(message)

    def hand_off(self, message: HopMessage, commit: Callable[[Enqueue | None], bool]) -> bool:
        """Run `commit` (a store write that makes `message` owed), then make sure it is queued."""
        enqueue = self.message_for(message)
        if not commit(enqueue):
            return False
        if enqueue is None:
            publish_hop(self.app, message)
        return True
