"""What Flower is given to show: a Redis URL for the custom transport, the queue each pool serves,
a task event per hop state (never prompt text), and every Parjanya queue on the Broker page."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from kombu import Queue
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from parjanya.app import create_app
from parjanya.broker.connection import redis_uri
from parjanya.broker.consumer import Consumer, active_queues, served_queues
from parjanya.config import ParjanyaConfig, Settings
from parjanya.observe.hops import HopEnd, HopStart
from parjanya.observe.task_events import TaskEvents, ended_event, received_fields
from parjanya.queues import ALL_DEAD_LETTER_QUEUES, ALL_WORK_QUEUES, class_list, class_lists
from parjanya.runtime.flower import (
    ClassesFolded,
    ParjanyaBrokerView,
    ParjanyaFlower,
    ParjanyaQueueLengths,
    fold_classes,
    for_parjanya,
    queue_names,
)
from parjanya.worker.watch import sends_task_events


def test_the_custom_transport_is_shown_with_the_redis_scheme() -> None:
    settings = Settings(broker_url="redis://:s3cret@cache.example:6380/2")
    app = create_app(settings, ParjanyaConfig())
    with app.connection() as conn:
        assert conn.as_uri() == "redis://:**@cache.example:6380/2"
        assert conn.as_uri(include_password=True) == "redis://:s3cret@cache.example:6380/2"
        assert conn.transport.driver_type == "redis"
    # A connection that uses TLS (`broker_use_ssl`) is shown as what it is.
    assert redis_uri("x.y:Transport://h:1/0", ssl=True) == "rediss://h:1/0"


def test_other_brokers_keep_their_own_uri() -> None:
    app = create_app(Settings(broker_url="amqp://guest:guest@rabbit:5672//"), ParjanyaConfig())
    with app.connection() as conn:
        assert conn.as_uri().startswith("amqp://")
    assert redis_uri("no scheme", ssl=False) == "no scheme"


def _consumer(consumed: list[str], fed: list[str]) -> Any:
    return SimpleNamespace(
        task_consumer=SimpleNamespace(queues=[Queue(q, routing_key=q) for q in consumed]),
        fed_queues={q: Queue(q, routing_key=q) for q in fed},
    )


def test_a_pool_reports_the_queue_its_feeder_serves_beside_those_celery_reads() -> None:
    consumer = _consumer(["parjanya.intake"], ["parjanya.tier.low", "parjanya.intake"])
    assert [q.name for q in served_queues(consumer)] == ["parjanya.intake", "parjanya.tier.low"]
    answer = active_queues(SimpleNamespace(consumer=consumer))
    assert [q["name"] for q in answer] == ["parjanya.intake", "parjanya.tier.low"]
    assert answer[1]["routing_key"] == "parjanya.tier.low"
    assert served_queues(SimpleNamespace(task_consumer=None, fed_queues={})) == []


def test_handing_a_queue_to_a_feeder_cancels_celery_and_keeps_reporting_it() -> None:
    cancelled: list[str] = []
    queue = Queue("parjanya.tier.mid", routing_key="parjanya.tier.mid")
    consumer = Consumer.__new__(Consumer)
    consumer.fed_queues = {}
    consumer.task_consumer = SimpleNamespace(queues=[queue])
    consumer.cancel_task_queue = cancelled.append  # type: ignore[method-assign]
    consumer.hand_to_feeder("parjanya.tier.mid")
    consumer.task_consumer = SimpleNamespace(queues=[])  # what Celery's cancel leaves
    assert cancelled == ["parjanya.tier.mid"]
    assert [q.name for q in served_queues(consumer)] == ["parjanya.tier.mid"]
    # On RabbitMQ Celery consumes each class queue of it (`broker/connection.py`): all cancelled.
    classes = [Queue(name, routing_key=name) for name in class_lists("parjanya.tier.high")]
    consumer.task_consumer = SimpleNamespace(queues=classes)
    cancelled.clear()
    consumer.hand_to_feeder("parjanya.tier.high")
    assert cancelled == list(class_lists("parjanya.tier.high"))


def test_a_hop_becomes_celery_task_events_with_a_readable_name_and_no_text() -> None:
    start = HopStart("abc", 2, "high", "acme")
    fields = received_fields(start)
    assert fields["uuid"] == "abc.2" and fields["name"] == "parjanya.tier.high"
    assert fields["args"] == "('high', 'acme')"
    assert fields["parent_id"] == "abc.1" and fields["root_id"] == "abc.0"
    assert received_fields(HopStart("abc", 0, "intake"))["parent_id"] is None

    kind, done = ended_event(HopEnd(start, "finished", 1500.0, "big-model"))
    assert kind == "task-succeeded" and done["runtime"] == 1.5 and "big-model" in done["result"]
    kind, failed = ended_event(HopEnd(start, "error", 20.0, error_type="TimeoutError"))
    assert kind == "task-failed" and failed["exception"] == "error: TimeoutError"
    assert ended_event(HopEnd(start, "dead_lettered", 1.0))[0] == "task-failed"


class Dispatcher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.flushed = 0

    def send(self, kind: str, **fields: Any) -> None:
        self.sent.append((kind, fields))

    def flush(self) -> None:
        self.flushed += 1


def test_the_observer_sends_received_started_then_the_end() -> None:
    dispatcher = Dispatcher()
    events = TaskEvents(dispatcher, flush_s=60)
    start = HopStart("abc", 1, "low", None)
    events.started(start)
    events.ended(HopEnd(start, "escalated", 5.0, "small"))
    events.flush()
    assert [k for k, _ in dispatcher.sent] == ["task-received", "task-started", "task-succeeded"]
    assert {f["uuid"] for _, f in dispatcher.sent} == {"abc.1"}
    assert dispatcher.flushed == 1


@pytest.mark.parametrize(
    ("dispatcher", "on"),
    [
        (None, False),
        (SimpleNamespace(enabled=False, groups=set()), False),
        (SimpleNamespace(enabled=True, groups={"worker"}), False),  # heartbeats only: no -E
        (SimpleNamespace(enabled=True, groups=set()), True),  # -E: every group
        (SimpleNamespace(enabled=True, groups={"worker", "task"}), True),
    ],
)
def test_hop_events_follow_the_workers_task_event_switch(dispatcher: Any, on: bool) -> None:
    assert sends_task_events(SimpleNamespace(event_dispatcher=dispatcher)) is on


def test_flowers_broker_page_inspects_every_parjanya_queue_dead_letters_included() -> None:
    names = queue_names(["parjanya.tier.low", "celery"])
    assert set(ALL_WORK_QUEUES + ALL_DEAD_LETTER_QUEUES) <= set(names)
    assert "celery" in names and names == sorted(names)


def test_on_rabbitmq_a_work_queues_class_queues_are_shown_as_one_with_their_sum() -> None:
    low = "parjanya.tier.low"
    listed = [
        {"name": low, "messages": 2, "messages_ready": 1, "messages_unacknowledged": 1},
        {"name": class_list(low, "batch"), "messages": 40, "messages_ready": 40, "consumers": 1},
        {"name": class_list(low, "standard")},  # the API has no stats for it yet
        {"name": "parjanya.dlq.low", "messages": 3},
    ]
    assert fold_classes(listed) == [
        {"name": "parjanya.dlq.low", "messages": 3},
        {
            "name": low,
            "messages": 42,
            "messages_ready": 41,
            "messages_unacknowledged": 1,
            "consumers": 1,
        },
    ]
    # A worker's report of a class queue (Celery's consumer on RabbitMQ) names its work queue.
    assert class_list(low, "batch") not in queue_names([class_list(low, "batch")])


def test_flowers_rabbitmq_client_is_asked_for_every_class_queue() -> None:
    import asyncio

    asked: list[list[str]] = []

    class Api:
        async def queues(self, names: list[str]) -> list[dict[str, Any]]:
            asked.append(names)
            return [{"name": name, "messages": 1} for name in names]

    shown = asyncio.run(ClassesFolded(Api()).queues(["parjanya.intake", "parjanya.dlq.intake"]))
    assert set(asked[0]) == {*class_lists("parjanya.intake"), "parjanya.dlq.intake"}
    assert shown == [
        {"name": "parjanya.dlq.intake", "messages": 1},
        {"name": "parjanya.intake", "messages": 3},
    ]


def test_the_default_vhost_is_asked_for_as_the_management_api_names_it() -> None:
    from flower.utils.broker import Broker, RabbitMQ

    api = "http://guest:guest@rabbit:15672/api/"
    default = for_parjanya(Broker("amqp://guest:guest@rabbit:5672//", http_api=api))
    assert isinstance(default, ClassesFolded) and isinstance(default.broker, RabbitMQ)
    assert default.broker.vhost == "%2F"  # Flower's own URL would list every vhost's queues
    named = for_parjanya(Broker("amqp://guest:guest@rabbit:5672/parjanya", http_api=api))
    assert named.broker.vhost == "parjanya"
    redis_client = Broker("redis://127.0.0.1:6379/0")
    assert for_parjanya(redis_client) is redis_client


def test_parjanya_flower_routes_the_queue_views_to_its_handlers() -> None:
    from flower.options import default_options

    app = ParjanyaFlower(capp=create_app(Settings(), ParjanyaConfig()), options=default_options)

    def handler_for(path: str) -> type:
        request = HTTPServerRequest(
            headers=HTTPHeaders({"Host": "127.0.0.1:5555"}),
            start_line=RequestStartLine("GET", path, "HTTP/1.1"),
        )
        return app.find_handler(request).handler_class  # type: ignore[no-any-return]

    assert handler_for("/broker") is ParjanyaBrokerView
    assert handler_for("/api/queues/length") is ParjanyaQueueLengths
    assert handler_for("/api/workers").__name__ == "ListWorkers"


def test_celerys_own_events_for_the_hop_tasks_are_off_so_a_hop_is_one_flower_task() -> None:
    from parjanya.app import app
    from parjanya.queues import INTAKE_TASK, TIER_TASK

    app.loader.import_default_modules()
    assert app.tasks[INTAKE_TASK].send_events is False
    assert app.tasks[TIER_TASK].send_events is False


def test_a_prefork_child_sends_its_hops_under_the_workers_name() -> None:
    sent: list[tuple[str, dict[str, Any]]] = []

    class App:
        class events:
            @staticmethod
            def Dispatcher(connection: Any, **options: Any) -> Any:
                assert options["hostname"] == "intake.1@host" and options["enabled"]
                return SimpleNamespace(
                    send=lambda kind, **fields: sent.append((kind, fields)),
                    flush=lambda: None,
                    close=lambda: None,
                    connection=SimpleNamespace(close=lambda: None),
                )

        @staticmethod
        def connection_for_write() -> None:
            return None

    from parjanya.observe import HopObservers
    from parjanya.worker.watch import watch_child_hops

    ctx = SimpleNamespace(app=App(), hops=HopObservers())
    events = watch_child_hops(ctx, "intake.1@host")  # type: ignore[arg-type]
    try:
        ctx.hops.started(HopStart("abc", 0, "intake", "acme"))
        assert [kind for kind, _ in sent] == ["task-received", "task-started"]
    finally:
        events.stop()
