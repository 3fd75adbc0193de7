"""The scrape-time sampler: queue depths, oldest ages, dead-letter depths (from the broker in use),
breaker states (from the store)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import fakeredis
import redis

from parjanya import keys
from parjanya.app import create_app
from parjanya.broker.depth import AmqpDepths, NoDepths, QueueDepths, QueueReading, RedisDepths
from parjanya.broker.envelope import HopEnvelopes
from parjanya.config import ParjanyaConfig, Settings
from parjanya.metrics_sampler import Sampler, deployments_of
from parjanya.queues import ALL_DEAD_LETTER_QUEUES, ALL_WORK_QUEUES, class_list, queue_for
from parjanya.schema import HopMessage, TaskRequest
from parjanya.store import TaskStore


def _values(sampler: Sampler) -> dict[tuple[str, tuple[str, ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value  # type: ignore[misc]
        for family in sampler.collect()
        for s in family.samples
    }


def _value(values: dict[tuple[str, tuple[str, ...]], float], name: str, **labels: str) -> float:
    return values[(name, tuple(sorted(labels.items())))]  # type: ignore[index]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _sampler(
    broker: fakeredis.FakeRedis | QueueDepths, store: TaskStore, clock: Clock, later_s: float = 0.0
) -> Sampler:
    config = ParjanyaConfig()
    depths = RedisDepths(broker) if isinstance(broker, redis.Redis) else broker
    return Sampler(
        depths,
        store,
        deployments_of(config),
        every_s=5.0,
        clock=clock,
        now=lambda: time.time() + later_s,
    )


def test_depths_ages_and_breakers_are_read_from_redis(
    broker: fakeredis.FakeRedis, store: TaskStore
) -> None:
    config = ParjanyaConfig()
    settings = Settings(broker_url="redis://broker.invalid/0")
    envelopes = HopEnvelopes(create_app(settings, config))
    oldest = store.create(TaskRequest(prompt="first"), requeue_after_s=600).task_id
    newest = store.create(TaskRequest(prompt="second"), requeue_after_s=600).task_id
    for task_id in (oldest, newest):  # kombu pushes on the left; the tail is the oldest
        message = HopMessage(task_id=task_id, hop=0, stage="intake")
        broker.lpush(queue_for("intake"), envelopes.for_hop(message).payload)
    batch = HopMessage(task_id=newest, hop=0, stage="intake", sla="batch")
    broker.lpush(class_list(queue_for("intake"), "batch"), envelopes.for_hop(batch).payload)
    broker.lpush(queue_for("low"), b"poison: no age can be read")
    broker.lpush("parjanya.dlq.mid", b"{}", b"{}")
    low_a = config.tiers["low"].deployments[0].name
    store.redis.hset(keys.breaker(low_a), mapping={"state": "open", "version": 3})

    values = _values(_sampler(broker, store, Clock(), later_s=42.0))

    assert _value(values, "parjanya_queue_depth", queue="parjanya.intake") == 3  # every class
    assert _value(values, "parjanya_queue_depth", queue="parjanya.tier.low") == 1
    assert _value(values, "parjanya_queue_depth", queue="parjanya.tier.high") == 0
    assert 41 <= _value(values, "parjanya_queue_oldest_age_seconds", queue="parjanya.intake") < 60
    assert _value(values, "parjanya_queue_oldest_age_seconds", queue="parjanya.tier.high") == 0
    assert ("parjanya_queue_oldest_age_seconds", (("queue", "parjanya.tier.low"),)) not in values
    assert _value(values, "parjanya_dead_letter_depth", queue="parjanya.dlq.mid") == 2
    assert {q for (n, ls) in values for k, q in ls if n == "parjanya_queue_depth"} == set(
        ALL_WORK_QUEUES
    )
    assert {q for (n, ls) in values for k, q in ls if n == "parjanya_dead_letter_depth"} == set(
        ALL_DEAD_LETTER_QUEUES
    )
    open_ = dict(tier="low", deployment=low_a)
    assert _value(values, "parjanya_breaker_state", state="open", **open_) == 1
    assert _value(values, "parjanya_breaker_state", state="closed", **open_) == 0
    high_a = config.tiers["high"].deployments[0].name
    assert (
        _value(values, "parjanya_breaker_state", tier="high", deployment=high_a, state="closed")
        == 1
    )


def test_scrapes_within_the_interval_share_one_reading(
    broker: fakeredis.FakeRedis, store: TaskStore
) -> None:
    clock = Clock()
    sampler = _sampler(broker, store, clock)
    first = _values(sampler)
    broker.lpush(queue_for("mid"), b"x")
    clock.now = 4.9
    assert _values(sampler) == first and sampler.samples == 1
    clock.now = 5.0
    assert _value(_values(sampler), "parjanya_queue_depth", queue="parjanya.tier.mid") == 1
    assert sampler.samples == 2


def test_an_unreachable_redis_reports_no_series_rather_than_stale_ones(store: TaskStore) -> None:
    clock = Clock()
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    sampler = _sampler(down, store, clock)  # type: ignore[arg-type]
    assert list(sampler.collect()) == []


class RabbitDepths:
    """What `AmqpDepths` answers: ready counts, never an age."""

    def read(self, queues: Sequence[str]) -> dict[str, QueueReading]:
        return {q: QueueReading(5 if q == queue_for("low") else 0) for q in queues}

    def close(self) -> None:
        pass


def test_on_rabbitmq_depths_are_reported_and_a_waiting_queues_age_is_absent(
    store: TaskStore,
) -> None:
    values = _values(_sampler(RabbitDepths(), store, Clock()))
    assert _value(values, "parjanya_queue_depth", queue="parjanya.tier.low") == 5
    assert ("parjanya_queue_oldest_age_seconds", (("queue", "parjanya.tier.low"),)) not in values
    assert _value(values, "parjanya_queue_oldest_age_seconds", queue="parjanya.tier.mid") == 0
    assert _value(values, "parjanya_dead_letter_depth", queue="parjanya.dlq.low") == 0


def test_the_broker_is_read_through_the_reader_its_url_picks(store: TaskStore) -> None:
    settings = Settings(
        broker_url="amqp://guest@rabbit.invalid//", result_url="redis://s.invalid/0"
    )
    assert isinstance(Sampler.from_settings(settings, ParjanyaConfig()).depths, AmqpDepths)
    sampler = _sampler(NoDepths(), store, Clock())  # a broker whose queues cannot be read
    assert [family.name for family in sampler.collect()] == ["parjanya_breaker_state"]
