"""The AMQP feeder's batch step, with fake deliveries: admitted, acked after the claim, or rejected;
its classes served by weight, and what it holds handed back when it stops."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kombu import Queue

from parjanya.broker.amqp import Refusals
from parjanya.broker.decode import DecodeLimits
from parjanya.queues import SLA_CLASSES, TIER_TASK, class_list
from parjanya.schema import HopMessage
from parjanya.worker.amqp_feeder import AmqpFeeder


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, Any] = field(default_factory=lambda: {"task": TIER_TASK})
    content_type: str = "application/json"
    delivery_info: dict[str, Any] = field(default_factory=dict)
    state: str = "received"
    properties: dict[str, Any] = field(default_factory=dict)

    def ack(self, multiple: bool = False) -> None:
        self.state = "acked-multiple" if multiple else "acked"

    def reject(self, requeue: bool = False) -> None:
        self.state = "requeued" if requeue else "rejected"


class Sink:
    def __init__(self) -> None:
        self.diverted: list[tuple[str | None, str]] = []

    def divert(self, queue: str | None, reason: str, raw: object) -> None:
        self.diverted.append((queue, reason))


class FakeAdmission:
    queue = "parjanya.tier.low"

    def __init__(self) -> None:
        self.admitted = 0
        self.batches: list[list[HopMessage]] = []
        self.ctx = type("Ctx", (), {"dead_letters": Sink()})()

    def admit_hops(self, hops: list[HopMessage]) -> int:
        self.batches.append(hops)
        self.admitted += len(hops)
        return len(hops)


def _hop(n: int, sla: str = "standard") -> bytes:
    hop = {"task_id": f"{n:032x}", "hop": 1, "stage": "low", "sla": sla}
    return json.dumps([[hop], {}, {}]).encode()


def _feeder(admission: FakeAdmission, room: int, batch: int = 8) -> AmqpFeeder:
    return AmqpFeeder(
        app=None,  # type: ignore[arg-type]  # step() never touches the connection
        queues={sla: Queue(class_list("parjanya.tier.low", sla)) for sla in SLA_CLASSES},
        admission=admission,  # type: ignore[arg-type]
        refusals=Refusals(DecodeLimits()),
        batch=batch,
        room=lambda wanted: min(wanted, room),
        weights={"critical": 8, "standard": 3, "batch": 1},
    )


def test_a_batch_is_claimed_in_one_call_then_acked_and_poison_is_rejected_once() -> None:
    admission = FakeAdmission()
    feeder = _feeder(admission, room=8)
    good = [Delivery(_hop(i)) for i in range(3)]
    poison = Delivery(b"\x00 not json", headers={"task": TIER_TASK})
    feeder._pending["standard"].extend([good[0], poison, *good[1:]])

    assert feeder.step() == 4
    assert len(admission.batches) == 1 and [h.task_id for h in admission.batches[0]] == [
        f"{i:032x}" for i in range(3)
    ]
    # One ack for the batch: the last hop's, with `multiple` (the poison was rejected before it).
    assert [d.state for d in good] == ["received", "received", "acked-multiple"]
    assert poison.state == "rejected"
    assert admission.ctx.dead_letters.diverted == [
        ("parjanya.tier.low", admission.ctx.dead_letters.diverted[0][1])
    ]
    assert "not JSON" in admission.ctx.dead_letters.diverted[0][1]


def test_only_what_the_dispatcher_has_room_for_is_taken_the_rest_stays_unacked() -> None:
    admission = FakeAdmission()
    feeder = _feeder(admission, room=2)
    deliveries = [Delivery(_hop(i)) for i in range(5)]
    feeder._pending["standard"].extend(deliveries)
    assert feeder.step() == 2
    assert [d.state for d in deliveries] == ["received", "acked-multiple"] + ["received"] * 3
    assert feeder.pending == 3
    full = _feeder(admission, room=0)
    full._pending["batch"].extend([Delivery(_hop(9))])
    assert full.step() == 0 and full._pending["batch"][0].state == "received"


def test_the_classes_are_admitted_by_weight_and_each_class_channel_acked_once() -> None:
    """A full pool taking one hop at a time from a batch flood and a critical burst: critical
    gets 8 of every 12 turns, batch still 1, and each step acks only what it took."""
    admission = FakeAdmission()
    feeder = _feeder(admission, room=1)
    buffered = {
        "critical": [Delivery(_hop(100 + i, "critical")) for i in range(40)],
        "batch": [Delivery(_hop(i, "batch")) for i in range(40)],
    }
    for sla, deliveries in buffered.items():
        feeder._pending[sla].extend(deliveries)  # type: ignore[index]
    for _ in range(24):
        assert feeder.step() == 1
    order = [hop.sla for batch in admission.batches for hop in batch]
    assert order.count("critical") >= 20 and 2 <= order.count("batch") <= 4, order
    assert all(d.state == "acked-multiple" for d in buffered["critical"][: order.count("critical")])
    assert buffered["critical"][order.count("critical")].state == "received"
    # With room for everything, each class's batch is acked by its last message alone.
    wide = _feeder(FakeAdmission(), room=64, batch=64)
    mixed = {sla: [Delivery(_hop(i, sla)) for i in range(3)] for sla in SLA_CLASSES}
    for sla, deliveries in mixed.items():
        wide._pending[sla].extend(deliveries)
    assert wide.step() == 9 and wide.pending == 0
    for deliveries in mixed.values():
        assert [d.state for d in deliveries] == ["received", "received", "acked-multiple"]


class CopyChannel:
    """The channel a stopping feeder publishes its copies on; `fail_after` copies, it breaks."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.published: list[tuple[Any, str]] = []
        self.fail_after = fail_after

    def basic_publish_confirm(
        self, message: Any, exchange: str, routing_key: str, **_: Any
    ) -> None:
        if self.fail_after is not None and len(self.published) >= self.fail_after:
            raise ConnectionResetError("connection lost")
        assert exchange == ""
        self.published.append((message, routing_key))

    def close(self) -> None:
        pass


class CopyConnection:
    def __init__(self, channel: CopyChannel) -> None:
        self._channel = channel

    def channel(self) -> CopyChannel:
        return self._channel


def _held(feeder: AmqpFeeder) -> list[Delivery]:
    headers = {"task": TIER_TASK, "parjanya_sent_at": 12.5, "x-delivery-count": 3}
    props = {"content_type": "application/json", "delivery_mode": 2}
    held = [
        Delivery(_hop(i, "batch"), properties={**props, "application_headers": dict(headers)})
        for i in range(3)
    ] + [Delivery(_hop(7, "critical"), properties={**props, "application_headers": headers})]
    feeder._pending["batch"].extend(held[:3])
    feeder._pending["critical"].append(held[3])
    return held


def test_what_a_stopping_feeder_holds_unclaimed_goes_back_by_copy_with_no_delivery_count() -> None:
    """A quorum queue counts a reject-requeue toward x-delivery-limit; a copy starts at 0."""
    feeder = _feeder(FakeAdmission(), room=0)
    held = _held(feeder)
    channel = CopyChannel()
    feeder._hand_back(CopyConnection(channel))
    assert [d.state for d in held] == ["acked"] * 4 and feeder.pending == 0
    assert [key for _, key in channel.published] == [  # the most urgent class first
        class_list("parjanya.tier.low", "critical"),
        *[class_list("parjanya.tier.low", "batch")] * 3,
    ]
    copy, _ = channel.published[1]
    assert copy.body == held[0].body
    assert copy.properties["application_headers"] == {"task": TIER_TASK, "parjanya_sent_at": 12.5}
    assert copy.properties["delivery_mode"] == 2


def test_what_cannot_be_copied_back_is_requeued_and_nothing_is_both() -> None:
    feeder = _feeder(FakeAdmission(), room=0)
    held = _held(feeder)
    feeder._hand_back(CopyConnection(CopyChannel(fail_after=1)))
    assert [d.state for d in held] == ["requeued", "requeued", "requeued", "acked"]
    assert feeder.pending == 0


def test_the_broker_picks_the_feeder_and_a_small_pool_gets_a_small_window() -> None:
    from parjanya.app import create_app
    from parjanya.config import ParjanyaConfig, Settings
    from parjanya.worker.amqp_feeder import AmqpFeeder as Amqp
    from parjanya.worker.context import build_context
    from parjanya.worker.feeder import QueueFeeder
    from parjanya.worker.feeding import build_feeder

    config = ParjanyaConfig()
    for url, kind in (("amqp://guest@rabbit//", Amqp), ("redis://127.0.0.1:1/0", QueueFeeder)):
        settings = Settings(broker_url=url, result_url="redis://127.0.0.1:1/1")
        ctx = build_context(settings, config, create_app(settings, config))
        admission = FakeAdmission()
        small = build_feeder(ctx, admission, batch=64, room=lambda wanted: min(wanted, 44))  # type: ignore[arg-type]
        assert isinstance(small, kind)
        if isinstance(small, Amqp):
            assert small.prefetch == 44  # 40 slots and their backlog, not 128
            assert list(small.class_queues) == list(SLA_CLASSES)
            assert [q.name for q in small.class_queues.values()] == [
                class_list("parjanya.tier.low", sla) for sla in SLA_CLASSES
            ]
            assert small.class_queues["batch"].queue_arguments["x-queue-type"] == "quorum"
            big = build_feeder(ctx, admission, batch=64)  # type: ignore[arg-type]
            assert isinstance(big, Amqp) and big.prefetch == config.amqp.feeder_prefetch
