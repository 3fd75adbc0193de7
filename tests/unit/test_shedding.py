"""Load shedding: the shared state's hysteresis, the producer's cache, and the config's checks."""

from __future__ import annotations

import json
import time

import fakeredis
import pytest
from pydantic import ValidationError

from parjanya import keys
from parjanya.broker.envelope import SENT_AT_HEADER
from parjanya.config import AdmissionConfig
from parjanya.governance.shedding import Overloaded, ShedGate
from parjanya.queues import INTAKE_QUEUE, class_list


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


def _fresh(gate: ShedGate) -> frozenset[str]:
    time.sleep(0.02)  # past check_interval_s, in the script and in the producer's cache
    return gate.state().shedding


def test_classes_are_shed_in_order_and_resume_below_their_level_times_the_ratio() -> None:
    client = fakeredis.FakeRedis()
    gate = ShedGate(client, _config())
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
    gate = ShedGate(client, _config())
    client.lpush(class_list(INTAKE_QUEUE, "batch"), b"\x00not json")
    _fill(client, 1, sent_at=time.time() - 70)  # 0.7 of max_age_s
    assert _fresh(gate) == {"batch"}


def test_a_producer_reuses_the_state_within_the_check_interval() -> None:
    client = fakeredis.FakeRedis()
    gate = ShedGate(client, _config(check_interval_s=60))
    assert gate.state().shedding == frozenset()
    _fill(client, 10)
    gate.check("batch")  # the cached answer: still admitted until the interval passes
    assert client.hget(keys.SHEDDING, "batch") == b"0"


def test_the_shared_state_is_what_every_producer_reads() -> None:
    server = fakeredis.FakeServer()
    first = ShedGate(fakeredis.FakeRedis(server=server), _config(check_interval_s=60))
    second = ShedGate(fakeredis.FakeRedis(server=server), _config(check_interval_s=60))
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
    import asyncio

    from parjanya.governance.shedding import AsyncShedGate

    server = fakeredis.FakeServer()
    _fill(fakeredis.FakeRedis(server=server), 6)  # 0.6: batch is shed

    async def submit(sla: str) -> None:
        gate = AsyncShedGate(fakeredis.FakeAsyncRedis(server=server), _config())
        await gate.check(sla)  # type: ignore[arg-type]

    asyncio.run(submit("standard"))
    with pytest.raises(Overloaded, match="batch work is refused"):
        asyncio.run(submit("batch"))
    assert fakeredis.FakeRedis(server=server).hget(keys.COUNTERS, "shed_batch") == b"1"
