"""Queue depths from the broker in use: Redis lists, RabbitMQ's class queues, or nothing known."""

from __future__ import annotations

import json
from typing import Any

import amqp
import fakeredis
import pytest
from amqp.protocol import queue_declare_ok_t

from parjanya.broker.depth import (
    AmqpDepths,
    DepthUnavailable,
    NoDepths,
    QueueReading,
    RedisDepths,
    queue_depths_for,
    sent_at_of,
)
from parjanya.broker.envelope import SENT_AT_HEADER
from parjanya.queues import class_list, class_lists, dead_letter_queue_for, queue_for

LOW = queue_for("low")
DLQ = dead_letter_queue_for("low")


def _envelope(sent_at: object) -> bytes:
    return json.dumps({"body": "", "headers": {SENT_AT_HEADER: sent_at}, "properties": {}}).encode()


def test_a_redis_queue_counts_every_class_list_and_its_oldest_tail(
    broker: fakeredis.FakeRedis,
) -> None:
    broker.lpush(class_list(LOW, "critical"), _envelope(300.0), _envelope(310.0))
    broker.lpush(class_list(LOW, "batch"), _envelope(120.5))  # the oldest of the tails
    broker.lpush(class_list(LOW, "standard"), b"\x00poison")
    broker.lpush(DLQ, b"{}", b"{}")

    readings = RedisDepths(broker).read([LOW, DLQ, queue_for("mid")])

    assert readings[LOW] == QueueReading(4, oldest_sent_at=120.5)
    assert readings[DLQ].depth == 2  # one list: a dead-letter queue has no classes
    assert readings[queue_for("mid")] == QueueReading(0, None)


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"\x00not json",
        b"[" * 50_000 + b"]" * 50_000,  # nested past the parser
        _envelope("yesterday"),
        _envelope(True),
        json.dumps({"headers": [1]}).encode(),
        _envelope(1.0) + b" " * 70_000,  # over the size it parses
    ],
)
def test_a_tail_without_a_readable_date_gives_none(raw: bytes | None) -> None:
    assert sent_at_of(raw) is None


def test_a_redis_that_cannot_be_reached_is_depth_unavailable() -> None:
    server = fakeredis.FakeServer()
    server.connected = False
    with pytest.raises(DepthUnavailable, match="Redis"):
        RedisDepths(fakeredis.FakeRedis(server=server)).read([LOW])


class FakeChannel:
    """A py-amqp channel's passive declare: a count for a declared queue, 404 for another (after
    which RabbitMQ has closed the channel)."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts, self.closed = counts, False

    def queue_declare(self, name: str, passive: bool) -> Any:
        assert passive and not self.closed
        if name not in self.counts:
            self.closed = True
            raise amqp.exceptions.NotFound(f"no queue '{name}'")
        return queue_declare_ok_t(name, self.counts[name], 0)

    def close(self) -> None:
        self.closed = True


class FakeConnection:
    def __init__(self, counts: dict[str, int]) -> None:
        self.counts, self.channels = counts, 0

    def channel(self) -> FakeChannel:
        self.channels += 1
        return FakeChannel(self.counts)

    def release(self) -> None:
        pass


def test_rabbitmq_counts_ready_messages_of_the_class_queues_and_says_no_age(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    critical, standard, batch = class_lists(LOW)
    fake = FakeConnection({critical: 2, standard: 3, batch: 4, DLQ: 1})
    depths = AmqpDepths("amqp://guest@rabbit.invalid//")
    monkeypatch.setattr(depths, "_connected", lambda: fake)

    readings = depths.read([LOW, DLQ, queue_for("mid")])

    assert readings[LOW] == QueueReading(9, oldest_sent_at=None)  # never peeked at
    assert readings[DLQ] == QueueReading(1)
    assert readings[queue_for("mid")] == QueueReading(0)  # not declared yet: empty
    assert fake.channels == 1 + 3  # a new channel only after each 404 closed one


def test_rabbitmq_retries_once_on_a_new_connection_then_says_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    depths = AmqpDepths("amqp://guest@rabbit.invalid//")
    attempts: list[int] = []

    def refused() -> Any:
        attempts.append(1)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(depths, "_connected", refused)
    with pytest.raises(DepthUnavailable, match="RabbitMQ"):
        depths.read([LOW])
    assert len(attempts) == 2


def test_an_unreachable_rabbitmq_is_depth_unavailable() -> None:
    depths = AmqpDepths("amqp://guest:guest@127.0.0.1:1//", timeout_s=0.5)
    with pytest.raises(DepthUnavailable):
        depths.read([LOW])
    depths.close()


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("amqp://guest@rabbit:5672/parjanya", AmqpDepths),
        ("pyamqp://guest@rabbit//", AmqpDepths),
        ("redis://broker:6379/0", RedisDepths),
        ("sentinel://s1:26379;sentinel://s2:26379?master_name=parjanya", RedisDepths),
        ("sentinel://s1:26379;sentinel://s2:26379", NoDepths),  # Celery's form: no master name
        ("sqs://", NoDepths),
    ],
)
def test_the_reader_is_chosen_once_from_the_broker_url(url: str, kind: type) -> None:
    depths = queue_depths_for(url)
    assert isinstance(depths, kind)
    assert isinstance(NoDepths().read([LOW]), dict) and not NoDepths().read([LOW])
