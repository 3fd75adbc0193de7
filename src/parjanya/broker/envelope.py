"""A hop's Celery task message in the exact form kombu's Redis transport keeps on a queue list.

When the store and the broker are one Redis database, the store's commit script pushes the next
hop's message itself (`store.tasks`): the state change and the enqueue become one atomic step, a
true outbox with no moment where a hop is owed but not queued, and one round trip instead of two.
It also skips kombu's publish path, about a quarter of a classifier hop's CPU (bench/pipeline.py).

The message is what `publish.HopPublisher.publish` would have sent through kombu: Celery protocol 2 headers
(built once by Celery's own `as_task_v2`, then only the ids and the argument repr change), the JSON
body base64-encoded, and `delivery_info` naming the queue, as kombu's `Channel._put` writes it. A
unit test compares the two field by field, so a Celery or kombu upgrade that changes the format
fails there and not in production. Any worker, Flower or `celery inspect` reads these messages.
The hop's SLA class is its kombu priority: the message goes on that class's list of the queue
(`queues.class_list`), and carries the priority so that kombu restores it to the same list.
"""

from __future__ import annotations

import base64
import copy
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from celery import Celery

from parjanya.queues import (
    CLASS_PRIORITY,
    INTAKE_TASK,
    TIER_TASK,
    class_list,
    queue_for,
    task_for,
)
from parjanya.schema import HopMessage

__all__ = ["SENT_AT_HEADER", "Enqueue", "HopEnvelopes", "shares_one_redis"]

#: Unix time a hop's message was queued: load shedding reads the oldest message's age from it.
SENT_AT_HEADER = "parjanya_sent_at"

_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


@dataclass(frozen=True)
class Enqueue:
    """One message to push onto one queue list, inside the store's commit."""

    queue: str
    payload: str


def shares_one_redis(store_url: str, app: Celery) -> bool:
    """Whether the store may write the broker's lists: same Redis database, plain list layout."""
    broker_url = app.conf.broker_url or ""
    options = app.conf.broker_transport_options or {}
    return (
        store_url == broker_url
        and urlparse(broker_url).scheme in ("redis", "rediss")
        and not options.get("global_keyprefix")
        and app.conf.task_protocol == 2
        and app.conf.task_serializer == "json"
    )


class HopEnvelopes:
    """Builds `Enqueue`s for hops; the header template comes from the app it is given."""

    def __init__(self, app: Celery) -> None:
        self._headers = {name: self._template(app, name) for name in (INTAKE_TASK, TIER_TASK)}

    @staticmethod
    def _template(app: Celery, task_name: str) -> dict[str, Any]:
        placeholder = app.amqp.as_task_v2(uuid.uuid4().hex, task_name, args=())
        return dict(placeholder.headers)

    def for_hop(self, message: HopMessage) -> Enqueue:
        queue = queue_for(message.stage)
        task_id = uuid.uuid4().hex
        args = (message.model_dump(exclude_none=True),)
        headers = copy.copy(self._headers[task_for(message.stage)])
        headers.update(id=task_id, root_id=task_id, argsrepr=repr(args))
        headers[SENT_AT_HEADER] = round(time.time(), 3)
        body = json.dumps([list(args), {}, _EMBED]).encode()
        envelope = {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": {
                "correlation_id": task_id,
                "reply_to": "",
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": CLASS_PRIORITY[message.sla],
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
        return Enqueue(queue=class_list(queue, message.sla), payload=json.dumps(envelope))
