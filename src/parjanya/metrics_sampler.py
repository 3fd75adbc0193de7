"""Queue depths, oldest-message ages, dead-letter depths and breaker states, read on a scrape.

These are facts about shared state, not about one process, so no process counts them: whichever
process is scraped reads them (one reading of the broker, one pipelined round trip to the store),
at most once per `metrics.sample_every_s`; scrapes in between get the cached reading, so ten
scrapers cost what one does. Every pool reports every queue, so a tier whose pool is down still
shows its backlog; the alert rules aggregate with `max by (queue)`, which the duplicates do not
change.

The queues are read from the broker in use through a `QueueDepths` (`broker/depth.py`): a work
queue's depth counts all its SLA classes, and its oldest message's age comes from the
`parjanya_sent_at` header of the oldest class tail on Redis. RabbitMQ cannot say how old its
oldest message is without delivering it, so on RabbitMQ the oldest-age series is absent (as it is
on Redis for a tail that carries no date, such as poison waiting to be dead-lettered); an empty
queue reports 0.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from parjanya import keys, metrics
from parjanya.broker.depth import DepthUnavailable, QueueDepths, queue_depths_for
from parjanya.config import ParjanyaConfig, Settings
from parjanya.queues import ALL_DEAD_LETTER_QUEUES, ALL_WORK_QUEUES
from parjanya.store import TaskStore

log = logging.getLogger("parjanya.metrics")

BREAKER_STATES = ("closed", "half_open", "open")


class Sampler:
    """A prometheus-client collector over the broker's queues and the store's breaker hashes."""

    def __init__(
        self,
        depths: QueueDepths,
        store: TaskStore,
        deployments: Sequence[tuple[str, str]],
        *,
        every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
    ) -> None:
        """`deployments`: (tier, name) pairs whose breakers are reported. `now` is wall-clock
        time (the ages' reference), `clock` a monotonic one (the cache's)."""
        self.depths, self.store, self.deployments = depths, store, list(deployments)
        self.every_s, self.clock, self.now = every_s, clock, now
        self._lock = threading.Lock()
        self._sampled_at: float | None = None
        self._families: list[Metric] = []
        self.samples = 0  # round trips made: what the cache saves is visible in tests

    @classmethod
    def from_settings(cls, settings: Settings, config: ParjanyaConfig) -> Sampler:
        """Clients of its own, with short timeouts: a scrape never waits on a worker's feeders or
        hops for a connection, and a broker or store that hangs costs a scrape 5 s, not the
        worker anything."""
        return cls(
            queue_depths_for(settings.broker_url, timeout_s=5),
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
                except (redis.RedisError, DepthUnavailable) as exc:
                    # Absent series, not stale ones: the rules see the gap (ParjanyaMetricsAbsent).
                    log.warning("metrics: cannot read the queues or breakers: %r", exc)
                    self._families = []
            return list(self._families)

    def _sample(self) -> list[Metric]:
        self.samples += 1
        return [*self._queues(), self._breakers()]

    def _queues(self) -> list[Metric]:
        """The work and dead-letter queues' families; none for a broker whose queues are unknown."""
        readings = self.depths.read([*ALL_WORK_QUEUES, *ALL_DEAD_LETTER_QUEUES])
        if not readings:
            return []
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
        now = self.now()
        for queue in ALL_WORK_QUEUES:
            reading = readings.get(queue)
            if reading is None:
                continue
            depth.add_metric([queue], float(reading.depth))
            if reading.oldest_sent_at is not None:
                oldest.add_metric([queue], max(0.0, now - reading.oldest_sent_at))
            elif reading.depth == 0:
                oldest.add_metric([queue], 0.0)
        for queue in ALL_DEAD_LETTER_QUEUES:
            if queue in readings:
                dead.add_metric([queue], float(readings[queue].depth))
        return [depth, oldest, dead]

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


def deployments_of(config: ParjanyaConfig) -> list[tuple[str, str]]:
    """(tier, deployment) pairs whose breakers a sampler reports, in config order."""
    return [(tier, d.name) for tier, tc in config.tiers.items() for d in tc.deployments]
