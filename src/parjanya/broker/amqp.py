"""RabbitMQ as the broker: how Parjanya's queues are declared, and what a consumer refuses.

On Redis, a queue is a list and a poison entry is diverted by Parjanya's transport
(`broker.transport`). On RabbitMQ the server does both jobs natively, and this module asks it to:

- every work queue is one queue per SLA class (`queues.class_lists`: `parjanya.tier.low` for
  critical, then the Redis sub-list names for standard and batch), since a quorum queue has no
  message priorities; a hop is published to its class's queue (`broker/publish.py`) and a feeder
  consumes the three by weight (`worker/amqp_feeder.py`);
- each of them is a **quorum queue** (replicated, `amqp.queue_type`) with
  `x-dead-letter-exchange` set to `parjanya.dlx`, which routes a message the consumer rejects
  (or one redelivered past `x-delivery-limit`) to `parjanya.dlq.<stage>`: a message that kills
  every consumer before the store sees it still cannot loop;
- publishes wait for the broker's **confirm** (`confirm_publish`), so a hop the store says is
  owed is on the broker before the commit that owes it returns;
- prefetch stays bounded: Celery's `worker_prefetch_multiplier` (1) times its threads, and a tier
  feeder's own consumers hold at most `amqp.feeder_prefetch` per class queue
  (`worker/amqp_feeder.py`). Quorum queues refuse a global QoS, which Celery's
  `worker_detect_quorum_queues` (on) already avoids.

Declarations must be identical wherever a queue is declared (RabbitMQ refuses a redeclaration
with other arguments), so every declaration is built here, from the config, once.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from kombu import Connection, Exchange, Queue

from parjanya.broker.decode import DecodeLimits, Undecodable, hop_of
from parjanya.config import AmqpConfig
from parjanya.queues import (
    ALL_DEAD_LETTER_QUEUES,
    ALL_WORK_QUEUES,
    INTAKE_QUEUE,
    INTAKE_TASK,
    STAGES,
    TIER_TASK,
    SlaClass,
    base_queue,
    class_list,
    class_lists,
    dead_letter_queue_for,
    lists_of,
    queue_for,
)
from parjanya.schema import HopMessage

AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")

#: Work queues dead-letter here; each `parjanya.dlq.<stage>` is bound by its own name.
DEAD_LETTER_EXCHANGE = Exchange("parjanya.dlx", type="direct", durable=True)
#: The default exchange: a routing key names the queue, so delivery needs no binding.
DIRECT = Exchange("", type="direct")


def is_amqp(url: str) -> bool:
    return urlparse(url).scheme in AMQP_SCHEMES


def answers(url: str, timeout_s: float = 2.0) -> bool:
    """Whether a RabbitMQ accepts a connection at `url` (credentials and vhost included)."""
    try:
        with Connection(url, connect_timeout=timeout_s) as connection:
            connection.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


def _type_arguments(policy: AmqpConfig) -> dict[str, Any]:
    return {"x-queue-type": policy.queue_type}


def work_queue(stage_queue: str, dead_letter_queue: str, policy: AmqpConfig) -> Queue:
    arguments = {
        **_type_arguments(policy),
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE.name,
        "x-dead-letter-routing-key": dead_letter_queue,
    }
    if policy.queue_type == "quorum":
        arguments["x-delivery-limit"] = policy.delivery_limit
    return Queue(
        stage_queue,
        DIRECT,
        routing_key=stage_queue,
        durable=True,
        queue_arguments=arguments,
    )


def dead_letter_queue(name: str, policy: AmqpConfig) -> Queue:
    return Queue(
        name,
        DEAD_LETTER_EXCHANGE,
        routing_key=name,
        durable=True,
        queue_arguments=_type_arguments(policy),
    )


def work_queues(policy: AmqpConfig) -> list[Queue]:
    """The class queues of the four work queues, as Celery's `task_queues` and every producer
    declare them; all of a stage's classes dead-letter to its one `parjanya.dlq.<stage>`."""
    return [
        work_queue(name, dead_letter_queue_for(stage), policy)
        for stage in STAGES
        for name in class_lists(queue_for(stage))
    ]


def routing_key(app: Any, queue: str, sla: SlaClass) -> str:
    """Where a hop of class `sla` for `queue` is published: its class queue on RabbitMQ, the
    queue itself on Redis (where kombu puts it on the class's list by its priority)."""
    return class_list(queue, sla) if is_amqp(app.conf.broker_url or "") else queue


def dead_letter_queues(policy: AmqpConfig) -> list[Queue]:
    return [dead_letter_queue(dead_letter_queue_for(stage), policy) for stage in STAGES]


#: The queues a producer declares (once per connection, kombu caches it) before publishing to
#: each queue: RabbitMQ drops a message routed to a queue no one declared yet.
Declares = dict[str, list[Queue]]


def declares_for(app: Any) -> Declares:
    """Per queue, what to declare before publishing to it: RabbitMQ's queues, nothing on Redis."""
    if not is_amqp(app.conf.broker_url or ""):
        return {}
    return {queue.name: [queue] for queue in app.amqp.queues.values()}


def declare_all(connection: Connection, policy: AmqpConfig) -> None:
    """Declare the dead-letter exchange, its queues and the work queues (idempotent).

    A worker runs this at start: a work queue's dead letters are dropped by RabbitMQ until a
    queue is bound to the exchange, so the dead-letter queues must exist before anything is
    rejected, whichever pool starts first.
    """
    channel = connection.default_channel
    DEAD_LETTER_EXCHANGE.declare(channel=channel)
    for queue in (*dead_letter_queues(policy), *work_queues(policy)):
        queue.declare(channel=channel)


#: The first RabbitMQ with quorum queues (and `x-delivery-limit` on them).
QUORUM_SINCE = (3, 8)


class QuorumUnsupported(RuntimeError):
    pass


def server_version(connection: Connection) -> tuple[int, ...]:
    """RabbitMQ's version from the connection's server properties; () when it does not say."""
    properties = getattr(connection.connection, "server_properties", None) or {}
    raw = properties.get("version", b"")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    parts = []
    for part in text.split(".")[:3]:
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def check_queue_type(version: tuple[int, ...], policy: AmqpConfig) -> None:
    """Quorum queues need RabbitMQ 3.8; an older server would quietly declare classic ones
    (it ignores the arguments it does not know), without replication or a delivery limit."""
    if policy.queue_type == "quorum" and version and version < QUORUM_SINCE:
        shown = ".".join(map(str, version))
        raise QuorumUnsupported(
            f"RabbitMQ {shown} has no quorum queues (3.8 and later): upgrade it, or set "
            "amqp.queue_type: classic"
        )


def prepare(app: Any, policy: AmqpConfig) -> None:
    """At a worker's start: check and declare everything on RabbitMQ; nothing to do on Redis."""
    if is_amqp(app.conf.broker_url or ""):
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=3)
            check_queue_type(server_version(connection), policy)
            declare_all(connection, policy)


def purge_dead_letter_queues(app: Any) -> int:
    """Empty RabbitMQ's `parjanya.dlq.*` queues (what `parjanya dlq purge` forgets in the store
    too); how many messages went. 0 on Redis, where the store's purge covers the lists."""
    if not is_amqp(app.conf.broker_url or ""):
        return 0
    purged = 0
    with app.connection_for_write() as connection:
        for name in ALL_DEAD_LETTER_QUEUES:
            channel = connection.channel()
            try:
                purged += int(channel.queue_purge(name) or 0)
            except Exception:  # not declared yet (no worker started): nothing to purge
                pass
            finally:
                with suppress(Exception):
                    channel.close()
    return purged


def ready_depth(connection: Connection, queue: str) -> int:
    """Messages ready on `queue` (a work queue: every class queue of it), as `queue_depth`
    counts a Redis queue's class lists; what consumers hold unacked is not counted."""
    total = 0
    for name in lists_of(queue):
        channel: Any = connection.channel()  # a passive declare of a missing queue closes it
        try:
            total += int(channel.queue_declare(name, passive=True).message_count)
        finally:
            with suppress(Exception):
                channel.close()
    return total


def transport_options(policy: AmqpConfig, reliability_bytes: int, depth: int) -> dict[str, Any]:
    return {
        "confirm_publish": policy.confirm_publish,
        # Read by Parjanya's consumer guard (`Refusals`): bounds on one queue message.
        "parjanya_max_message_bytes": reliability_bytes,
        "parjanya_max_message_depth": depth,
    }


def task_of_queue(queue: str | None) -> str | None:
    """The task a Parjanya work queue (or class queue of one) serves (None for Celery's own)."""
    queue = base_queue(queue) if queue else None
    if queue == INTAKE_QUEUE:
        return INTAKE_TASK
    if queue in ALL_WORK_QUEUES:
        return TIER_TASK
    return None


def message_queue(message: Any) -> str | None:
    """The queue a message was routed to; for a class queue, the work queue it is a class of."""
    info = getattr(message, "delivery_info", None) or {}
    queue = info.get("routing_key") or info.get("queue")
    return base_queue(str(queue)) if queue else None


@dataclass(frozen=True)
class Refusals:
    """Checks a delivered AMQP message against the queue it came from, before Celery sees it.

    The same bounded rules as a Redis list entry (`broker.decode`): the headers must name the
    queue's task and the body must be one hop within the size and depth limits. Celery's protocol
    2 decodes the body in the pool, where a body that fails raises out of the consumer and the
    unacked message comes back for ever; checked here, it is rejected to the dead-letter queue
    once instead.
    """

    limits: DecodeLimits

    def hop(self, message: Any, queue: str | None = None) -> HopMessage | None:
        """The hop a message on a work queue carries; None for Celery's own queues.

        `queue` is where it was consumed from (else its routing key). Raises `Undecodable` (with
        the reason for the dead letter) for anything else.
        """
        task = task_of_queue(queue or message_queue(message))
        if task is None:
            return None
        if getattr(message, "content_type", None) != "application/json":
            raise Undecodable(f"undecodable message (content type {message.content_type!r})")
        body = message.body
        if not isinstance(body, bytes | str):
            raise Undecodable("undecodable message (no body)")
        headers = message.headers if isinstance(message.headers, dict) else {}
        envelope = {"body": body, "headers": headers, "properties": {}}
        return hop_of(envelope, task, self.limits)
