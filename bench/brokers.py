"""Where a bench's queues and store live: one Redis (the default), or RabbitMQ with the store on Redis.

`--broker amqp://...` runs a bench's baseline and Parjanya on that RabbitMQ (bare Celery keeps its
results and counters in the same Redis as Parjanya's store). Use a vhost of the bench's own:
every queue the bench declared there is deleted at the end.
"""

from __future__ import annotations

import os
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import redis
from kombu import Connection

from parjanya.broker.amqp import DEAD_LETTER_EXCHANGE, is_amqp, ready_depth
from parjanya.governance.priority import queue_depth
from parjanya.queues import ALL_DEAD_LETTER_QUEUES, ALL_WORK_QUEUES, class_lists
from parjanya.runtime.embedded_redis import EmbeddedRedis, free_port


@dataclass
class BenchBroker:
    url: str
    store_url: str
    server: EmbeddedRedis | None
    _watch: Connection | None = None

    @property
    def kind(self) -> str:
        return "rabbitmq" if is_amqp(self.url) else "redis"

    @property
    def store(self) -> redis.Redis:
        return redis.Redis.from_url(self.store_url)

    def env(self) -> dict[str, str]:
        """Parjanya's settings for this broker (the store apart only on RabbitMQ)."""
        env = {"PARJANYA_BROKER_URL": self.url}
        if self.store_url != self.url:
            env["PARJANYA_RESULT_URL"] = self.store_url
        return env

    def depth(self, queue: str) -> int:
        """Messages ready on a queue: its Redis lists (every SLA class's), or RabbitMQ's count."""
        if not is_amqp(self.url):
            return queue_depth(redis.Redis.from_url(self.url), queue)
        if self._watch is None:
            self._watch = Connection(self.url)
        try:
            return ready_depth(self._watch, queue)  # every SLA class's queue of it
        except Exception:  # not declared yet: nothing on it
            return 0

    def close(self, extra_queues: tuple[str, ...] = ()) -> None:
        if self._watch is not None:
            self._watch.release()
        if is_amqp(self.url):
            with Connection(self.url) as connection:
                classes = [name for queue in ALL_WORK_QUEUES for name in class_lists(queue)]
                for queue in (*classes, *ALL_DEAD_LETTER_QUEUES, *extra_queues):
                    with suppress(Exception):  # never declared in this run
                        connection.channel().queue_delete(queue)
                connection.channel().exchange_delete(DEAD_LETTER_EXCHANGE.name)
        if self.server is not None:
            self.server.stop()


def _check_amqp(url: str) -> None:
    """Fail at once, saying what to do, when the RabbitMQ or its vhost is not there."""
    vhost = urlparse(url).path.lstrip("/") or "/"
    try:
        with Connection(url, connect_timeout=5) as probe:
            probe.ensure_connection(max_retries=1)
    except Exception as exc:
        raise SystemExit(
            f"cannot open {vhost!r} on the RabbitMQ of --broker ({exc}). A bench runs in a vhost "
            f"of its own; make it once with: rabbitmqctl add_vhost {vhost} && "
            f"rabbitmqctl set_permissions -p {vhost} <user> '.*' '.*' '.*'"
        ) from None


def open_broker(given: str | None, tmp: Path) -> BenchBroker:
    """The broker a bench runs on, and a Redis of its own for the store when it needs one."""
    redis_given = os.environ.get("PARJANYA_BENCH_REDIS_URL")
    if given is not None and is_amqp(given):
        _check_amqp(given)
        server = EmbeddedRedis(free_port(), tmp / "redis", appendonly=False).start()
        return BenchBroker(given, server.url, server)
    url = given or redis_given
    if url:
        return BenchBroker(url, url, None)
    server = EmbeddedRedis(free_port(), tmp / "redis", appendonly=False).start()
    return BenchBroker(server.url, server.url, server)
