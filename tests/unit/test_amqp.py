"""RabbitMQ declarations and the AMQP consumer guard, without a server."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from parjanya.app import create_app
from parjanya.broker.amqp import (
    Refusals,
    dead_letter_queues,
    declares_for,
    is_amqp,
    work_queues,
)
from parjanya.broker.decode import DecodeLimits, Undecodable
from parjanya.config import AmqpConfig, ParjanyaConfig, Settings
from parjanya.queues import INTAKE_TASK, TIER_TASK, class_list, class_lists, queue_for

AMQP = "amqp://guest:guest@127.0.0.1:5672//"


@dataclass
class FakeMessage:
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    content_type: str = "application/json"
    delivery_info: dict[str, Any] = field(default_factory=dict)


def _hop_body(stage: str = "intake") -> bytes:
    hop = {"task_id": "t" * 32, "hop": 0, "stage": stage}
    return json.dumps([[hop], {}, {}]).encode()


def test_work_queues_are_quorum_with_a_dead_letter_route_and_a_delivery_limit() -> None:
    queues = {q.name: q for q in work_queues(AmqpConfig(delivery_limit=7))}
    low = queues[queue_for("low")]
    assert low.queue_arguments == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "parjanya.dlx",
        "x-dead-letter-routing-key": "parjanya.dlq.low",
        "x-delivery-limit": 7,
    }
    assert low.durable and low.routing_key == "parjanya.tier.low"
    dlqs = {q.name: q for q in dead_letter_queues(AmqpConfig())}
    assert dlqs["parjanya.dlq.low"].exchange.name == "parjanya.dlx"
    assert dlqs["parjanya.dlq.low"].routing_key == "parjanya.dlq.low"


def test_classic_queues_have_no_delivery_limit() -> None:
    arguments = work_queues(AmqpConfig(queue_type="classic"))[0].queue_arguments or {}
    assert arguments["x-queue-type"] == "classic" and "x-delivery-limit" not in arguments


def test_every_sla_class_has_a_quorum_queue_of_its_own_dead_lettering_with_the_others() -> None:
    queues = {q.name: q for q in work_queues(AmqpConfig())}
    assert len(queues) == 12  # four work queues, three classes each
    for sla in ("critical", "standard", "batch"):
        name = class_list("parjanya.tier.mid", sla)  # type: ignore[arg-type]
        arguments = queues[name].queue_arguments or {}
        assert queues[name].routing_key == name and arguments["x-queue-type"] == "quorum"
        assert arguments["x-dead-letter-routing-key"] == "parjanya.dlq.mid"
    assert class_list("parjanya.tier.mid", "critical") == "parjanya.tier.mid"


def test_a_hop_is_published_to_its_class_queue_on_rabbitmq_and_by_priority_on_redis() -> None:
    from parjanya.broker.amqp import routing_key

    app = create_app(Settings(broker_url=AMQP), ParjanyaConfig())
    redis_app = create_app(Settings(broker_url="redis://127.0.0.1:6379/0"), ParjanyaConfig())
    low = queue_for("low")
    assert routing_key(app, low, "batch") == class_list(low, "batch") != low
    assert routing_key(app, low, "critical") == low
    assert routing_key(redis_app, low, "batch") == low  # kombu's priority picks the list there


def test_a_worker_given_a_queue_consumes_all_its_class_queues() -> None:
    app = create_app(Settings(broker_url=AMQP), ParjanyaConfig())
    app.amqp.queues.select(["parjanya.tier.low"])
    assert set(app.amqp.queues.consume_from) == set(class_lists("parjanya.tier.low"))
    redis_app = create_app(Settings(broker_url="redis://127.0.0.1:6379/0"), ParjanyaConfig())
    redis_app.amqp.queues.select("parjanya.tier.low")
    assert set(redis_app.amqp.queues.consume_from) == {"parjanya.tier.low"}


def test_the_guard_reads_a_class_queue_as_its_work_queue() -> None:
    batch = FakeMessage(
        _hop_body("low"),
        {"task": TIER_TASK},
        delivery_info={"routing_key": class_list("parjanya.tier.low", "batch")},
    )
    hop = Refusals(DecodeLimits()).hop(batch)
    assert hop is not None and hop.stage == "low"


def test_an_amqp_app_confirms_publishes_and_declares_before_publishing() -> None:
    app = create_app(Settings(broker_url=AMQP), ParjanyaConfig())
    assert app.conf.broker_transport_options["confirm_publish"] is True
    assert app.conf.broker_transport is None and app.conf.worker_prefetch_multiplier == 1
    declares = declares_for(app)
    assert set(declares) == {
        name
        for queue in ("parjanya.intake", *(f"parjanya.tier.{t}" for t in ("low", "mid", "high")))
        for name in class_lists(queue)
    }
    assert declares["parjanya.intake"][0].queue_arguments["x-queue-type"] == "quorum"
    redis_app = create_app(Settings(broker_url="redis://127.0.0.1:6379/0"), ParjanyaConfig())
    assert declares_for(redis_app) == {} and is_amqp(AMQP) and not is_amqp("redis://x")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (FakeMessage(b"{", {"task": INTAKE_TASK}), "not JSON"),
        (FakeMessage(b"[" * 40 + b"]" * 40, {"task": INTAKE_TASK}), "nested"),
        (FakeMessage(_hop_body(), {"task": "nope"}), "unknown task"),
        (FakeMessage(_hop_body(), {"task": TIER_TASK}), "unknown task"),
        (FakeMessage(_hop_body(), {"task": INTAKE_TASK}, content_type="text/plain"), "content"),
        (FakeMessage(b"[[{}], {}, {}]", {"task": INTAKE_TASK}), "invalid hop"),
        (FakeMessage(b"x" * 2000, {"task": INTAKE_TASK}), "over the"),
    ],
)
def test_the_guard_refuses_what_is_not_a_hop_of_the_queue(
    message: FakeMessage, reason: str
) -> None:
    message.delivery_info = {"routing_key": "parjanya.intake"}
    with pytest.raises(Undecodable, match=reason):
        Refusals(DecodeLimits(max_bytes=1000, max_depth=32)).hop(message)


def test_the_guard_passes_hops_and_celerys_own_queues() -> None:
    refusals = Refusals(DecodeLimits())
    good = FakeMessage(
        _hop_body("low"), {"task": TIER_TASK}, delivery_info={"routing_key": "parjanya.tier.low"}
    )
    hop = refusals.hop(good)
    assert hop is not None and hop.stage == "low"
    pidbox = FakeMessage(b"anything", {}, delivery_info={"routing_key": "celery.pidbox"})
    assert refusals.hop(pidbox) is None


def test_the_consumer_leaves_out_celerys_delayed_delivery_and_keeps_the_rest() -> None:
    from celery.worker.consumer import Consumer as CeleryConsumer

    from parjanya.broker.consumer import Consumer

    ours, celerys = Consumer.Blueprint.default_steps, CeleryConsumer.Blueprint.default_steps
    assert [s for s in celerys if s not in ours] == [
        "celery.worker.consumer.delayed_delivery:DelayedDelivery"
    ]


def test_quorum_queues_need_rabbitmq_3_8_and_classic_ones_do_not() -> None:
    from parjanya.broker.amqp import QuorumUnsupported, check_queue_type, server_version

    with pytest.raises(QuorumUnsupported, match=r"RabbitMQ 3\.7\.28 .*amqp.queue_type: classic"):
        check_queue_type((3, 7, 28), AmqpConfig())
    check_queue_type((3, 7, 28), AmqpConfig(queue_type="classic"))
    check_queue_type((3, 10, 8), AmqpConfig())
    check_queue_type((), AmqpConfig())  # a server that does not say: declare and see

    class Raw:
        server_properties = {"version": b"3.10.8"}

    class Conn:
        connection = Raw()

    assert server_version(Conn()) == (3, 10, 8)  # type: ignore[arg-type]


def test_kedas_rabbitmq_scaler_counts_every_class_queue_of_its_pool_and_nothing_else() -> None:
    import re
    from pathlib import Path

    import yaml

    from parjanya.queues import ALL_DEAD_LETTER_QUEUES, ALL_WORK_QUEUES

    path = Path(__file__).parents[2] / "deploy/kubernetes/keda/scaledobjects-rabbitmq.yaml"
    objects = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    every_queue = [name for queue in ALL_WORK_QUEUES for name in class_lists(queue)]
    every_queue += list(ALL_DEAD_LETTER_QUEUES)
    counted = {}
    for scaled in objects:
        (trigger,) = scaled["spec"]["triggers"]
        meta = trigger["metadata"]
        assert trigger["type"] == "rabbitmq" and meta["protocol"] == "http"
        assert meta["useRegex"] == "true" and meta["operation"] == "sum"
        pattern = re.compile(meta["queueName"])  # PCRE on the server; the same syntax here
        counted[scaled["metadata"]["name"]] = {q for q in every_queue if pattern.search(q)}
    stage_of = {"classifier": "intake", **{f"worker-{t}": t for t in ("low", "mid", "high")}}
    assert set(counted) == set(stage_of)
    for name, stage in stage_of.items():
        assert counted[name] == set(class_lists(queue_for(stage))), name  # type: ignore[arg-type]
