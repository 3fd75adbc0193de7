"""SLA classes as priorities: the weighted turns, the class lists, and the pop that serves them."""

from __future__ import annotations

import json
from collections import Counter

import fakeredis
import pytest
from kombu.transport import redis as kombu_redis

from parjanya.app import create_app
from parjanya.broker.envelope import HopEnvelopes
from parjanya.config import ParjanyaConfig, Settings
from parjanya.governance.priority import WeightedPop, WeightedTurns, queue_depth
from parjanya.queues import (
    CLASS_PRIORITY,
    PRIORITY_SEP,
    PRIORITY_STEPS,
    class_list,
    class_lists,
)
from parjanya.schema import HopMessage

WEIGHTS = {"critical": 8, "standard": 3, "batch": 1}


def test_class_lists_are_kombus_priority_sub_lists() -> None:
    """Celery's consumer, Flower and kombu's restore read the same lists as the feeders."""
    assert kombu_redis.Channel.sep == PRIORITY_SEP
    assert list(PRIORITY_STEPS) == kombu_redis.PRIORITY_STEPS
    for sla, priority in CLASS_PRIORITY.items():
        assert priority in PRIORITY_STEPS
        expected = "parjanya.tier.high" + (f"{PRIORITY_SEP}{priority}" if priority else "")
        assert class_list("parjanya.tier.high", sla) == expected
    assert class_lists("q") == ("q", f"q{PRIORITY_SEP}3", f"q{PRIORITY_SEP}6")


def test_a_full_round_deals_slots_in_the_weights_evenly_interleaved() -> None:
    turns = WeightedTurns(WEIGHTS)
    one_at_a_time = [next(s for s, n in turns.deal(1).items() if n) for _ in range(12)]
    assert Counter(one_at_a_time) == WEIGHTS
    assert one_at_a_time.index("batch") < 12  # batch gets its turn within every round
    assert one_at_a_time[:2] == ["critical", "standard"]  # interleaved, not 8 critical first


def test_batch_is_never_starved_whatever_the_slot_sizes() -> None:
    turns = WeightedTurns(WEIGHTS)
    dealt: Counter[str] = Counter()
    for slots in [1, 5, 1, 1, 64, 3, 1, 2] * 10:
        dealt.update(turns.deal(slots))
    total = sum(dealt.values())
    assert abs(dealt["batch"] - total / 12) <= 1
    assert abs(dealt["critical"] - total * 8 / 12) <= 1


def _fill(broker: fakeredis.FakeRedis, queue: str, sla: str, n: int) -> None:
    for i in range(n):
        broker.lpush(class_list(queue, sla), f"{sla}-{i}".encode())  # type: ignore[arg-type]


def test_the_pop_takes_each_class_by_weight_oldest_first() -> None:
    broker = fakeredis.FakeRedis()
    for sla in WEIGHTS:
        _fill(broker, "q", sla, 30)
    popped = WeightedPop(broker, "q", WEIGHTS).pop(24)
    assert Counter(raw.decode().split("-")[0] for raw in popped) == {
        "critical": 16,
        "standard": 6,
        "batch": 2,
    }
    assert popped[0] == b"critical-0"  # RPOP: the oldest of each list first


def test_turns_a_class_cannot_use_go_to_the_others_most_urgent_first() -> None:
    broker = fakeredis.FakeRedis()
    _fill(broker, "q", "batch", 10)
    _fill(broker, "q", "standard", 2)
    popped = WeightedPop(broker, "q", WEIGHTS).pop(8)
    assert len(popped) == 8
    assert Counter(raw.decode().split("-")[0] for raw in popped) == {"standard": 2, "batch": 6}
    assert queue_depth(broker, "q") == 4


def test_taking_from_delivered_messages_follows_the_same_rule_as_the_pop() -> None:
    """`take` (RabbitMQ's class buffers) deals as `POP` does: by weight, then the turns a class
    cannot use to the others, most urgent first."""
    full = {"critical": 30, "standard": 30, "batch": 30}
    assert WeightedTurns(WEIGHTS).take(24, full) == {"critical": 16, "standard": 6, "batch": 2}
    short = {"critical": 0, "standard": 2, "batch": 10}
    assert WeightedTurns(WEIGHTS).take(8, short) == {"critical": 0, "standard": 2, "batch": 6}
    assert WeightedTurns(WEIGHTS).take(5, {"batch": 3}) == {
        "critical": 0,
        "standard": 0,
        "batch": 3,
    }


def test_an_idle_queue_blocks_on_every_class_list_most_urgent_first() -> None:
    broker = fakeredis.FakeRedis()
    asked: list[object] = []
    real_brpop = broker.brpop

    def brpop(names: list[str], timeout: int) -> object:
        asked.append(names)
        broker.lpush(class_list("q", "batch"), b"batch-late")
        broker.lpush("q", b"critical-late")
        return real_brpop(names, timeout=timeout)

    broker.brpop = brpop  # type: ignore[method-assign]
    assert WeightedPop(broker, "q", WEIGHTS).pop(4, idle_block_s=1) == [b"critical-late"]
    assert asked == [list(class_lists("q"))]


@pytest.mark.parametrize("sla", ["critical", "standard", "batch"])
def test_a_hop_message_goes_on_its_class_list_with_its_kombu_priority(sla: str) -> None:
    app = create_app(Settings(broker_url="redis://127.0.0.1:1/0"), ParjanyaConfig())
    enqueue = HopEnvelopes(app).for_hop(HopMessage(task_id="t", hop=1, stage="low", sla=sla))  # type: ignore[arg-type]
    assert enqueue.queue == class_list("parjanya.tier.low", sla)  # type: ignore[arg-type]
    assert json.loads(enqueue.payload)["properties"]["priority"] == CLASS_PRIORITY[sla]  # type: ignore[index]
