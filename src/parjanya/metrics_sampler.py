"""Queue depths, oldest-message ages, dead-letter depths and breaker states, read from Redis on a
scrape.

These are facts about shared state, not about one process, so no process counts them: whichever
process is scraped reads them (one pipelined round trip to the broker, one to the store), at most
once per `metrics.sample_every_s`; scrapes in between get the cached reading, so ten scrapers cost
what one does. Every pool reports every queue, so a tier whose pool is down still shows its
backlog; the alert rules aggregate with `max by (queue)`, which the duplicates do not change.

The oldest message of a work queue is the list's tail (kombu pushes on the left, workers pop on
the right); its age is read from the store's record of when that hop was queued. A tail that is
not a readable hop (poison, waiting to be dead-lettered) reports no age.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from parjanya import keys, metrics
from parjanya.broker.decode import Undecodable, decode_raw
from parjanya.config import ParjanyaConfig, Settings
from parjanya.queues import STAGES, dead_letter_queue_for, queue_for, task_for
from parjanya.schema import TaskResult, utcnow
from parjanya.store import TaskStore
from parjanya.worker.topology import is_redis

log = logging.getLogger("parjanya.metrics")

BREAKER_STATES = ("closed", "half_open", "open")


class RedisSampler:
    """A prometheus-client collector over the broker's lists and the store's breaker hashes."""

    def __init__(
        self,
        broker: redis.Redis | None,
        store: TaskStore,
        deployments: Sequence[tuple[str, str]],
        *,
        every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        """`deployments`: (tier, name) pairs whose breakers are reported. Without a Redis
        `broker` (RabbitMQ: its management API has the queue lengths) only breakers are."""
        self.broker, self.store, self.deployments = broker, store, list(deployments)
        self.every_s, self.clock, self.now = every_s, clock, now
        self._lock = threading.Lock()
        self._sampled_at: float | None = None
        self._families: list[Metric] = []
        self.samples = 0  # round trips made: what the cache saves is visible in tests

    @classmethod
    def from_settings(cls, settings: Settings, config: ParjanyaConfig) -> RedisSampler:
        """Clients of its own, with short timeouts: a scrape never waits on a worker's feeders or
        hops for a connection, and a Redis that hangs costs a scrape 5 s, not the worker anything."""
        broker = settings.broker_url
        return cls(
            redis.Redis.from_url(broker, socket_timeout=5, socket_connect_timeout=5)
            if is_redis(broker)
            else None,
            TaskStore.from_url(settings.store_url, socket_timeout=5),
            deployments_of(config),
            every_s=config.metrics.sample_every_s,
        )

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            due = self._sampled_at is None or self.clock() - self._sampled_at >= self.every_s
            if due:
                self._sampled_at = self.clock()
                try:
                    self._families = self._sample()
                except redis.RedisError as exc:
                    # Absent series, not stale ones: the rules see the gap (ParjanyaMetricsAbsent).
                    log.warning("metrics: cannot read queues from Redis: %r", exc)
                    self._families = []
            return list(self._families)

    def _sample(self) -> list[Metric]:
        self.samples += 1
        queues = [] if self.broker is None else self._queues(self.broker)
        return [*queues, self._breakers()]

    def _queues(self, broker: redis.Redis) -> list[Metric]:
        depth = GaugeMetricFamily(
            metrics.QUEUE_DEPTH, "Messages waiting on a queue.", labels=["queue"]
        )
        oldest = GaugeMetricFamily(
            metrics.QUEUE_OLDEST_AGE,
            "Seconds since the oldest waiting message of a work queue was queued (0 when empty).",
            labels=["queue"],
        )
        dead = GaugeMetricFamily(
            metrics.DEAD_LETTER_DEPTH, "Entries on a dead-letter queue.", labels=["queue"]
        )
        pipe = broker.pipeline(transaction=False)
        for stage in STAGES:
            pipe.llen(queue_for(stage))
            pipe.lindex(queue_for(stage), -1)
            pipe.llen(dead_letter_queue_for(stage))
        replies = pipe.execute()
        for index, stage in enumerate(STAGES):
            length, tail, dead_length = replies[3 * index : 3 * index + 3]
            queue = queue_for(stage)
            depth.add_metric([queue], float(length))
            dead.add_metric([dead_letter_queue_for(stage)], float(dead_length))
            age = 0.0 if tail is None else self._age_of(tail, task_for(stage))
            if age is not None:
                oldest.add_metric([queue], age)
        return [depth, oldest, dead]

    def _age_of(self, raw: bytes, task_name: str) -> float | None:
        try:
            hop = decode_raw(raw, task_name)
        except Undecodable:
            return None
        doc = self.store.get(hop.task_id)
        if doc is None:
            return None
        return max(0.0, (self.now() - queued_at(doc, hop.hop)).total_seconds())

    def _breakers(self) -> Metric:
        family = GaugeMetricFamily(
            metrics.BREAKER_STATE,
            "1 for the state each deployment's shared circuit breaker is in, 0 for the others.",
            labels=["tier", "deployment", "state"],
        )
        pipe = self.store.redis.pipeline(transaction=False)
        for _, name in self.deployments:
            pipe.hget(keys.breaker(name), "state")
        for (tier, name), raw in zip(self.deployments, pipe.execute(), strict=True):
            current = raw.decode() if isinstance(raw, bytes) else "closed"
            for state in BREAKER_STATES:
                family.add_metric([tier, name, state], 1.0 if state == current else 0.0)
        return family


def queued_at(doc: TaskResult, hop: int) -> datetime:
    """When `hop` was queued, by the task's own timings; its creation if they do not say."""
    for timing in reversed(doc.timings):
        if timing.hop == hop:
            return timing.queued_at
    return doc.created_at


def deployments_of(config: ParjanyaConfig) -> list[tuple[str, str]]:
    """(tier, deployment) pairs whose breakers a sampler reports, in config order."""
    return [(tier, d.name) for tier, tc in config.tiers.items() for d in tc.deployments]
