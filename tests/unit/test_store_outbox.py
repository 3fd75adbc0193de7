"""The store's enqueue (`store/outbox.py`) on fakeredis: one write when the store is the broker,
a publish after the write when it is apart, and no half-made task when that publish fails."""

from __future__ import annotations

import base64
import json

import fakeredis
import pytest

from parjanya.app import create_app
from parjanya.broker.publish import HopPublisher
from parjanya.config import ParjanyaConfig, Settings
from parjanya.governance.priority import queue_depth
from parjanya.queues import INTAKE_QUEUE, class_list
from parjanya.schema import HopMessage, TaskRequest
from parjanya.store import TaskStore
from parjanya.store.outbox import Outbox

ONE_REDIS = "redis://127.0.0.1:1/0"  # never connected: fakeredis stands in for it


def _outbox(config: ParjanyaConfig, store_url: str) -> Outbox:
    return Outbox(create_app(Settings(broker_url=ONE_REDIS), config), store_url)


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[HopMessage]:
    sent: list[HopMessage] = []
    monkeypatch.setattr(HopPublisher, "publish", lambda self, hop: sent.append(hop))
    return sent


def test_one_redis_records_and_queues_in_one_write(
    store: TaskStore, config: ParjanyaConfig, published: list[HopMessage]
) -> None:
    created = _outbox(config, ONE_REDIS).create(
        store, TaskRequest(prompt="Rename tmp to total."), requeue_after_s=30
    )
    assert created.created and created.enqueued and published == []
    # a standard-class hop, on its class's list of the queue (governance/priority.py)
    (raw,) = store.redis.lrange(class_list(INTAKE_QUEUE, "standard"), 0, -1)  # type: ignore[misc]
    body = json.loads(base64.b64decode(json.loads(raw)["body"]))
    assert body[0][0] == {
        "task_id": created.task_id,
        "hop": 0,
        "stage": "intake",
        "sla": "standard",
    }


def test_a_store_apart_publishes_after_the_record(
    store: TaskStore, config: ParjanyaConfig, published: list[HopMessage]
) -> None:
    created = _outbox(config, "redis://127.0.0.1:1/1").create(
        store, TaskRequest(prompt="Rename tmp to total."), requeue_after_s=30
    )
    assert created.created and not created.enqueued
    assert published == [HopMessage(task_id=created.task_id, hop=0, stage="intake")]
    assert store.get(created.task_id) is not None and queue_depth(store.redis, INTAKE_QUEUE) == 0


def test_a_failed_publish_withdraws_the_record_and_raises(
    store: TaskStore, config: ParjanyaConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*_: object) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(HopPublisher, "publish", down)
    request = TaskRequest(prompt="Rename tmp to total.", idempotency_key="req-1")
    with pytest.raises(ConnectionError):
        _outbox(config, "redis://127.0.0.1:1/1").create(store, request, requeue_after_s=30)
    assert store.redis.keys("*") == []  # neither the task, its outbox entry, nor its key


def test_a_duplicate_submission_publishes_nothing(
    config: ParjanyaConfig, published: list[HopMessage]
) -> None:
    store = TaskStore(fakeredis.FakeRedis())
    outbox = _outbox(config, "redis://127.0.0.1:1/1")
    request = TaskRequest(prompt="Rename tmp to total.", idempotency_key="req-2")
    first = outbox.create(store, request, requeue_after_s=30)
    again = outbox.create(store, request, requeue_after_s=30)
    assert again.task_id == first.task_id and not again.created and len(published) == 1
