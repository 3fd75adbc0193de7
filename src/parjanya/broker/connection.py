"""A kombu connection that names Parjanya's Redis transport by its URL scheme, `redis://`.

`app.py` selects the transport by its class path (`broker/transport.py`), and kombu renders a
connection's URL with that path as its scheme: `parjanya.broker.transport:Transport://host:6379/0`.
Monitoring tools pick their broker client by that scheme, and Flower's Broker page and
`/api/queues/length` answered 404 "'redis' broker is not supported". The transport is kombu's
Redis transport with two reads hardened, so its URL is a Redis URL; `as_uri` says so. Nothing
else changes: connecting still goes through the class path.

On RabbitMQ a work queue is one queue per SLA class (`broker/amqp.py`); `Queues.select` makes
`-Q parjanya.tier.low` (what `parjanya worker` passes, and what users of `celery worker` write)
select all three, so Celery's consumer serves every class of the queue it is given.
"""

from __future__ import annotations

from typing import Any

from celery.app.amqp import AMQP as CeleryAMQP
from celery.app.amqp import Queues as CeleryQueues
from celery.utils.functional import maybe_list
from kombu import Connection as KombuConnection

from parjanya.queues import class_lists

#: The class path `app.py` gives Celery as `broker_transport`.
TRANSPORT_PATH = "parjanya.broker.transport:Transport"


def redis_uri(uri: str, *, ssl: bool) -> str:
    """`uri` with the transport's class path replaced by the Redis scheme it speaks."""
    _, sep, rest = uri.partition("://")
    return f"{'rediss' if ssl else 'redis'}{sep}{rest}" if sep else uri


class Connection(KombuConnection):
    def as_uri(self, *args: Any, **kwargs: Any) -> str:
        uri: str = super().as_uri(*args, **kwargs)
        if self.transport_cls != TRANSPORT_PATH:
            return uri
        return redis_uri(uri, ssl=bool(self.ssl))


class Queues(CeleryQueues):
    def select(self, include: Any) -> None:
        """Select `include`, and each one's class queues where they are declared (RabbitMQ)."""
        names = maybe_list(include) or []
        super().select([name for queue in names for name in _with_classes(self, queue)])


def _with_classes(declared: Any, queue: str) -> list[str]:
    classes = [name for name in class_lists(queue) if name in declared]
    return classes if queue in classes else [queue]


class AMQP(CeleryAMQP):
    """Celery's messaging helpers, with the connection and queue classes above (`Celery(amqp=...)`)."""

    Connection = Connection
    BrokerConnection = Connection
    queues_cls = Queues
