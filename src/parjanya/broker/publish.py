"""Publishing a hop's message through kombu: the store's outbox (`store/outbox.py`) calls it when
its own commit could not push the message (the store apart from the broker), and the reaper and
replay republish through it.

Messages are ordinary Celery protocol-2 task messages (built by `app.amqp.as_task_v2`), so any
Celery worker, Flower and `celery inspect` understand them. They are published with a kombu
producer kept per thread instead of `Celery.send_task`, which spends about three times the CPU
on routing, signals and pool checkout (bench/pipeline.py: 440 against 140 microseconds per message),
and a task costs two or three publishes. The producers belong to a `HopPublisher`, which its owner
(an outbox, a reaper, a replay) holds and passes: there is no module-level cache of them.
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
    """This thread's producer: kombu channels are not shared across threads."""

    entry: tuple[int, Any, Producer, Declares] | None = (
        None  # (pid, connection, producer, declares)
    )


class HopPublisher:
    """Publishes hops of one Celery app, with a producer per thread and process."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self._producers = _Producers()

    def _producer(self) -> tuple[Producer, Declares]:
        entry = self._producers.entry
        if entry is None or entry[0] != os.getpid():  # a forked child opens its own connection
            connection = self.app.connection_for_write()
            entry = (
                os.getpid(),
                connection,
                Producer(connection.default_channel),
                declares_for(self.app),
            )
            self._producers.entry = entry
        return entry[2], entry[3]

    def publish(self, message: HopMessage) -> None:
        """Send one hop. The store already says the hop is owed, so a lost publish is republished.

        Its SLA class is its kombu priority, so kombu's Redis transport puts it on the class's list;
        on RabbitMQ it is routed to the class's own queue (`broker/amqp.py`). A republish (reaper,
        replay, escalation) carries the hop's class, so it lands in the same class again.
        """
        queue = routing_key(self.app, queue_for(message.stage), message.sla)
        task = self.app.amqp.as_task_v2(
            uuid.uuid4().hex,
            task_for(message.stage),
            args=(message.model_dump(exclude_none=True),),
        )
        producer, declares = self._producer()
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

    def close(self) -> None:
        """Release this thread's connection (others' go with their threads)."""
        entry, self._producers.entry = self._producers.entry, None
        if entry is not None and entry[0] == os.getpid():
            entry[1].release()
