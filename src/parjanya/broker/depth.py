"""How many messages wait on each queue, read from the broker actually in use.

Two parts need it: the metrics sampler's gauges (`metrics_sampler.py`) and load shedding's limits
(`governance/shedding.py`). Each takes a `QueueDepths` and never asks which broker is behind it;
`queue_depths_for` picks the reader from the broker URL, once, when a process builds its
clients. It is the only place that looks at the scheme for this.

- **Redis** (`RedisDepths`): a work queue is one list per SLA class (`queues.class_lists`). Its
  depth is the lists' lengths together; its oldest message is the oldest of the lists' tails
  (kombu pushes on the left, consumers pop on the right), dated by the `parjanya_sent_at` header
  every Parjanya publish carries (`broker/envelope.py`, `broker/publish.py`). A tail that is not
  an envelope with that header (poison waiting to be diverted, an entry over 64 KiB) gives no
  date. One pipelined round trip for every queue.
- **RabbitMQ** (`AmqpDepths`): a work queue is one quorum queue per class. Its depth is the ready
  messages of the three, a passive `queue.declare`'s message count each (cheap: no message is
  touched; what consumers hold unacked is not counted, as a popped Redis entry is not). The
  oldest message's age is **not available**: AMQP cannot look at a message without delivering
  it, and a delivery handed back counts toward a quorum queue's `x-delivery-limit`
  (`broker/amqp.py`), so no reading is attempted (`oldest_sent_at` is None). Shedding on
  RabbitMQ therefore goes by depth alone, and the oldest-age gauge is absent for its queues.
- **Any other broker** (`NoDepths`): nothing is known; every reading is missing.

Transport errors are mapped here into `DepthUnavailable`, so a reader handles one exception
whatever the broker is.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol

import amqp
import redis
from kombu import Connection
from kombu.exceptions import KombuError

from parjanya.broker.amqp import is_amqp
from parjanya.broker.envelope import SENT_AT_HEADER
from parjanya.connect import is_redis, is_sentinel, redis_client
from parjanya.queues import lists_of

__all__ = [
    "AmqpDepths",
    "DepthUnavailable",
    "NoDepths",
    "QueueDepths",
    "QueueReading",
    "RedisDepths",
    "queue_depths_for",
    "sent_at_of",
]

#: Tails longer than this are not parsed for their date (the shedding script's old bound).
MAX_TAIL_BYTES = 65_536


class DepthUnavailable(Exception):
    """The broker could not be asked (down, unreachable, refused): no reading this time."""


@dataclass(frozen=True)
class QueueReading:
    #: Messages waiting (ready), every class list or class queue of a work queue together.
    depth: int
    #: Unix time the oldest waiting message was published; None when the queue is empty or the
    #: broker cannot say (RabbitMQ, or a tail that carries no date).
    oldest_sent_at: float | None = None


class QueueDepths(Protocol):
    """Reads queue depths from one broker. `read` answers for the queues it knows (a work queue
    counts all its class lists/queues; any other name, e.g. a dead-letter queue, is one queue);
    a queue missing from the answer is unknown. Raises only `DepthUnavailable`."""

    def read(self, queues: Sequence[str]) -> dict[str, QueueReading]: ...

    def close(self) -> None: ...


def sent_at_of(raw: bytes | None) -> float | None:
    """The `parjanya_sent_at` header of a kombu envelope on a Redis list; None for anything else."""
    if raw is None or len(raw) >= MAX_TAIL_BYTES:
        return None
    try:
        envelope = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the parser
        return None
    headers = envelope.get("headers") if isinstance(envelope, dict) else None
    sent = headers.get(SENT_AT_HEADER) if isinstance(headers, dict) else None
    if isinstance(sent, bool) or not isinstance(sent, int | float):
        return None
    return float(sent)


class RedisDepths:
    """Depths and oldest dates from a Redis broker's lists, in one pipelined round trip."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def read(self, queues: Sequence[str]) -> dict[str, QueueReading]:
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for queue in queues:
                    for name in lists_of(queue):
                        pipe.llen(name)
                        pipe.lindex(name, -1)
                replies = pipe.execute()
        except redis.RedisError as exc:
            raise DepthUnavailable(f"Redis: {exc!r}") from exc
        readings: dict[str, QueueReading] = {}
        at = 0
        for queue in queues:
            depth, dates = 0, []
            for _ in lists_of(queue):
                length, tail = replies[at], replies[at + 1]
                at += 2
                depth += int(length)
                sent = sent_at_of(tail)
                if sent is not None:
                    dates.append(sent)
            readings[queue] = QueueReading(depth, min(dates) if dates else None)
        return readings

    def close(self) -> None:
        self.client.close()


class AmqpDepths:
    """Ready-message counts from RabbitMQ (passive declares), over one connection it keeps.

    The connection is opened at the first read and kept for the next ones; one that failed is
    replaced once within the same read. A class queue no one declared yet (no worker started)
    is empty. Reads are serialised (a kombu connection is not shared between threads).
    """

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        self.url, self.timeout_s = url, timeout_s
        self._lock = threading.Lock()
        self._connection: Connection | None = None

    def read(self, queues: Sequence[str]) -> dict[str, QueueReading]:
        with self._lock:
            for attempt in (1, 2):
                try:
                    return self._read(self._connected(), queues)
                except (OSError, amqp.exceptions.AMQPError, KombuError) as exc:
                    self._drop()
                    if attempt == 2:
                        raise DepthUnavailable(f"RabbitMQ: {exc!r}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _connected(self) -> Connection:
        if self._connection is None:
            connection = Connection(self.url, connect_timeout=self.timeout_s)
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
            self._connection = connection
        return self._connection

    def _read(self, connection: Connection, queues: Sequence[str]) -> dict[str, QueueReading]:
        channel: Any = connection.channel()
        readings: dict[str, QueueReading] = {}
        try:
            for queue in queues:
                depth = 0
                for name in lists_of(queue):
                    try:
                        depth += int(channel.queue_declare(name, passive=True).message_count)
                    except amqp.exceptions.NotFound:  # not declared yet: empty; the broker
                        channel = connection.channel()  # closed the channel, so open another
                readings[queue] = QueueReading(depth)
        finally:
            with suppress(Exception):
                channel.close()
        return readings

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with suppress(Exception):
                connection.release()

    def close(self) -> None:
        with self._lock:
            self._drop()


class NoDepths:
    """A broker whose queues Parjanya cannot read: every queue is unknown."""

    def read(self, queues: Sequence[str]) -> dict[str, QueueReading]:
        return {}

    def close(self) -> None:
        pass


def queue_depths_for(broker_url: str, *, timeout_s: float = 5.0) -> QueueDepths:
    """The reader for the broker at `broker_url`, with short timeouts (a depth read never holds
    a scrape or a submission for long). Nothing connects until the first read."""
    if is_amqp(broker_url):
        return AmqpDepths(broker_url, timeout_s=timeout_s)
    if is_redis(broker_url) or is_sentinel(broker_url):
        try:
            client = redis_client(
                broker_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
            )
        except ValueError:  # a Sentinel URL in Celery's form, without its master's name
            return NoDepths()
        return RedisDepths(client)
    return NoDepths()
