"""The store's own enqueue writes the message kombu would have written, on a real Redis."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from parjanya import keys
from parjanya.app import create_app
from parjanya.broker.envelope import SENT_AT_HEADER, HopEnvelopes, shares_one_redis
from parjanya.broker.publish import HopPublisher
from parjanya.client import Client, TaskHandle
from parjanya.config import Settings, load_config
from parjanya.queues import INTAKE_QUEUE, class_list, queue_for
from parjanya.schema import HopMessage

pytestmark = pytest.mark.integration


def _own_db(url: str, db: int) -> str:
    """A database of the test server no cluster consumes, so nothing races our pops."""
    return urlsplit(url)._replace(path=f"/{db}").geturl()


def _decoded(raw: bytes) -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads(raw)
    envelope["body"] = json.loads(base64.b64decode(envelope["body"]))
    ids = envelope["headers"]["id"]
    for field in ("id", "root_id"):
        assert envelope["headers"][field] == ids
        envelope["headers"][field] = "<id>"
    assert envelope["properties"]["correlation_id"] == ids
    envelope["properties"]["correlation_id"] = "<id>"
    envelope["properties"]["delivery_tag"] = "<tag>"
    assert isinstance(envelope["headers"].pop(SENT_AT_HEADER), float)  # when it was queued
    return envelope


@pytest.mark.parametrize(
    ("stage", "sla"), [("intake", "standard"), ("low", "batch"), ("high", "critical")]
)
def test_the_store_message_is_the_one_kombu_publishes(redis_url: str, stage: str, sla: str) -> None:
    """Down to the SLA class's list: kombu's priority sub-list for the message's priority."""
    url = _own_db(redis_url, 5)
    app = create_app(Settings(broker_url=url), load_config())
    server = redis.Redis.from_url(url)
    hop = HopMessage(task_id="t-1", hop=2, stage=stage, sla=sla)  # type: ignore[arg-type]
    queue = class_list(queue_for(hop.stage), hop.sla)
    try:
        HopPublisher(app).publish(hop)
        by_kombu = server.rpop(queue)
        enqueue = HopEnvelopes(app).for_hop(hop)
        assert enqueue.queue == queue
        assert _decoded(by_kombu) == _decoded(enqueue.payload.encode())  # type: ignore[arg-type]
    finally:
        app.close()
        server.close()


def test_submit_is_one_write_when_the_store_is_the_broker(redis_url: str) -> None:
    url = _own_db(redis_url, 6)
    server = redis.Redis.from_url(url)
    shared = Client(url, config=load_config())
    apart = Client(url, result_url=_own_db(redis_url, 7), config=load_config())
    made: list[TaskHandle] = []
    try:
        assert shares_one_redis(shared.settings.store_url, shared.app)
        assert not shares_one_redis(apart.settings.store_url, apart.app)
        handle = shared.submit("Rename tmp to total.")
        made.append(handle)
        queued = [
            json.loads(raw) for raw in server.lrange(class_list(INTAKE_QUEUE, "standard"), 0, -1)
        ]
        carried = [json.loads(base64.b64decode(m["body"]))[0][0]["task_id"] for m in queued]
        assert handle.id in carried
        apart_handle = apart.submit("Rename tmp to total.")  # published by kombu after the record
        made.append(apart_handle)
        queued = [
            json.loads(raw) for raw in server.lrange(class_list(INTAKE_QUEUE, "standard"), 0, -1)
        ]
        carried = [json.loads(base64.b64decode(m["body"]))[0][0]["task_id"] for m in queued]
        assert apart_handle.id in carried
    finally:
        for client in (shared, apart):  # leave the server as we found it
            store = client.store.redis
            for task_id in (m.id for m in made if m.client is client):
                store.delete(keys.task(task_id))
                store.zrem(keys.inflight(keys.shard_of(task_id)), task_id)
        server.delete(INTAKE_QUEUE)
        shared.close()
        apart.close()
        server.close()
