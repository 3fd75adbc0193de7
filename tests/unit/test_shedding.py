"""Load shedding: the shared state's hysteresis, the producer's cache, the depth readings it
acts on (a Redis broker's lists, or any `QueueDepths`), and the config's checks."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence

import fakeredis
import pytest
from pydantic import ValidationError

from parjanya import keys
from parjanya.broker.depth import DepthUnavailable, QueueReading, RedisDepths
from parjanya.broker.envelope import SENT_AT_HEADER
from parjanya.config import AdmissionConfig
from parjanya.governance.shedding import AsyncShedGate, Overloaded, ShedGate, load_of
from parjanya.queues import INTAKE_QUEUE, class_list, queue_for


def _config(**extra: object) -> AdmissionConfig:
    fields: dict[str, object] = {
        "queue_limits": {INTAKE_QUEUE: {"max_depth": 10, "max_age_s": 100}},
        "check_interval_s": 0.01,
        **extra,
    }
    return AdmissionConfig.model_validate(fields)


def _fill(client: fakeredis.FakeRedis, n: int, sent_at: float | None = None) -> None:
    headers = {} if sent_at is None else {SENT_AT_HEADER: sent_at}
    for _ in range(n):
        client.lpush(class_list(INTAKE_QUEUE, "standard"), json.dumps({"headers": headers}))


def _gate(client: fakeredis.FakeRedis, config: AdmissionConfig) -> ShedGate:
    """A gate whose store and broker are one Redis (the lists are read where the state is)."""
    return ShedGate(client, config, RedisDepths(client))


class Depths:
    """An in-memory `QueueDepths`: the readings a test sets, and how often it was asked."""

    def __init__(self, **depths: int) -> None:
        self.readings = {queue_for(stage): QueueReading(n) for stage, n in depths.items()}  # type: ignore[arg-type]
        self.reads = 0
        self.down = False

    def read(self, queues: Sequence[str]) -> dict[str, QueueReading]:
        self.reads += 1
        if self.down:
            raise DepthUnavailable("RabbitMQ: connection refused")
        return {q: r for q, r in self.readings.items() if q in queues}

    def close(self) -> None:
        pass


def _fresh(gate: ShedGate) -> frozenset[str]:
    time.sleep(0.02)  # past check_interval_s, in the script and in the producer's cache
    return gate.state().shedding


def test_classes_are_shed_in_order_and_resume_below_their_level_times_the_ratio() -> None:
    client = fakeredis.FakeRedis()
    gate = _gate(client, _config())
    _fill(client, 5)
    assert _fresh(gate) == frozenset()
    _fill(client, 1)  # 0.6
    assert _fresh(gate) == {"batch"}
    _fill(client, 2)  # 0.8
    assert _fresh(gate) == {"batch", "standard"}
    _fill(client, 2)  # 1.0
    assert _fresh(gate) == {"batch", "standard", "critical"}
    with pytest.raises(Overloaded) as refused:
        gate.check("critical")
    assert refused.value.retry_after_s == 5.0 and "parjanya.intake" in str(refused.value)
    client.rpop(class_list(INTAKE_QUEUE, "standard"), 3)  # 0.7: below 1.0 x 0.8 only
    assert _fresh(gate) == {"batch", "standard"}
    client.rpop(class_list(INTAKE_QUEUE, "standard"), 2)  # 0.5: below 0.8 x 0.8, not 0.6 x 0.8
    assert _fresh(gate) == {"batch"}
    client.rpop(class_list(INTAKE_QUEUE, "standard"), 1)  # 0.4
    assert _fresh(gate) == frozenset()
    counters = {k.decode(): int(v) for k, v in client.hgetall(keys.COUNTERS).items()}
    assert counters["shed_started_batch"] == counters["shed_stopped_batch"] == 1
    assert counters["shed_critical"] == 1


def test_the_oldest_message_age_counts_and_a_hostile_entry_is_ignored() -> None:
    client = fakeredis.FakeRedis()
    gate = _gate(client, _config())
    client.lpush(class_list(INTAKE_QUEUE, "batch"), b"\x00not json")
    _fill(client, 1, sent_at=time.time() - 70)  # 0.7 of max_age_s
    assert _fresh(gate) == {"batch"}


def test_a_producer_reuses_the_state_within_the_check_interval() -> None:
    client = fakeredis.FakeRedis()
    gate = _gate(client, _config(check_interval_s=60))
    assert gate.state().shedding == frozenset()
    _fill(client, 10)
    gate.check("batch")  # the cached answer: still admitted until the interval passes
    assert client.hget(keys.SHEDDING, "batch") == b"0"


def test_the_shared_state_is_what_every_producer_reads() -> None:
    server = fakeredis.FakeServer()
    first = _gate(fakeredis.FakeRedis(server=server), _config(check_interval_s=60))
    second = _gate(fakeredis.FakeRedis(server=server), _config(check_interval_s=60))
    _fill(first.client, 8)  # type: ignore[arg-type]
    assert first.state().shedding == {"batch", "standard"}
    second.client.delete(class_list(INTAKE_QUEUE, "standard"))
    assert second.state().shedding == {"batch", "standard"}  # measured once per interval


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"shed_at": {"batch": 0.9, "standard": 0.8, "critical": 1.0}}, "must rise"),
        ({"shed_at": {"batch": 0.5, "standard": 0.8}}, "no entry"),
        ({"class_weights": {"critical": 8, "standard": 3, "batch": 0}}, "at least 1"),
        ({"queue_limits": {"parjanya.tier.huge": {"max_depth": 1}}}, "unknown queues"),
    ],
)
def test_the_config_refuses_a_policy_that_cannot_work(
    patch: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        AdmissionConfig.model_validate(patch)


def test_the_apis_gate_refuses_a_shed_class_and_counts_it() -> None:
    server = fakeredis.FakeServer()
    _fill(fakeredis.FakeRedis(server=server), 6)  # 0.6: batch is shed

    async def submit(sla: str) -> None:
        depths = RedisDepths(fakeredis.FakeRedis(server=server))
        gate = AsyncShedGate(fakeredis.FakeAsyncRedis(server=server), _config(), depths)
        await gate.check(sla)  # type: ignore[arg-type]

    asyncio.run(submit("standard"))
    with pytest.raises(Overloaded, match="batch work is refused"):
        asyncio.run(submit("batch"))
    assert fakeredis.FakeRedis(server=server).hget(keys.COUNTERS, "shed_batch") == b"1"


def test_the_queues_are_read_from_the_given_depths_not_from_the_store() -> None:
    """RabbitMQ's class queues (or a Redis broker apart from the store): the store's Redis holds
    only the shared state, and the depth comes from the `QueueDepths` the gate was given."""
    store = fakeredis.FakeRedis()
    depths = Depths(intake=8)
    gate = ShedGate(store, _config(), depths)
    assert _fresh(gate) == {"batch", "standard"}
    assert gate.state().queue == INTAKE_QUEUE and gate.state().load == pytest.approx(0.8)
    assert store.keys("parjanya.intake*") == []  # nothing of the queue's is in the store
    depths.readings[INTAKE_QUEUE] = QueueReading(3)  # 0.3: below 0.6 x 0.8 and 0.8 x 0.8
    assert _fresh(gate) == frozenset()


def test_one_producer_measures_per_interval_and_the_others_read_its_answer() -> None:
    server = fakeredis.FakeServer()
    depths = Depths(intake=10)
    gates = [
        ShedGate(fakeredis.FakeRedis(server=server), _config(check_interval_s=60), depths)
        for _ in range(5)
    ]
    assert all(g.state().shedding == {"batch", "standard", "critical"} for g in gates)
    assert depths.reads == 1


def test_a_broker_that_cannot_be_read_leaves_the_previous_flags_standing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = fakeredis.FakeRedis()
    depths = Depths(intake=6)
    gate = ShedGate(client, _config(), depths)
    assert _fresh(gate) == {"batch"}
    depths.down = True
    depths.readings[INTAKE_QUEUE] = QueueReading(0)
    with caplog.at_level(logging.WARNING, logger="parjanya.shedding"):
        assert _fresh(gate) == {"batch"}  # not refused wholesale, not admitted blindly
    assert "cannot read the queues" in caplog.text
    depths.down = False
    assert _fresh(gate) == frozenset()


def test_the_load_is_the_fullest_queues_share_and_an_unknown_age_adds_nothing() -> None:
    config = _config()  # intake: 10 deep, 100 s; the others at the defaults
    now = 1_000.0
    readings = {
        INTAKE_QUEUE: QueueReading(2, oldest_sent_at=now - 50),  # age: 0.5
        queue_for("low"): QueueReading(40_000, oldest_sent_at=None),  # RabbitMQ: depth 0.4
    }
    assert load_of(readings, config, now) == (0.5, INTAKE_QUEUE)
    readings[INTAKE_QUEUE] = QueueReading(2, oldest_sent_at=now + 30)  # a clock ahead: age 0
    assert load_of(readings, config, now) == (pytest.approx(0.4), queue_for("low"))
    assert load_of({}, config, now) == (0.0, "")
