"""Webhooks without a network: the signature, where a callback may go, and the outbox.

The whole path over real sockets (a worker sends, a local receiver verifies) is in
tests/integration/test_doors.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
from collections.abc import Iterator

import fakeredis
import httpx
import pytest
from pydantic import ValidationError

from parjanya import keys
from parjanya.config import WebhookConfig
from parjanya.schema import HopMessage, TaskRequest, TaskStatus
from parjanya.store import TaskStore
from parjanya.store.aio import AsyncTaskStore
from parjanya.store.apikeys import ApiKeyStore
from parjanya.webhooks import sign, verify
from parjanya.webhooks.addresses import Refused, resolve
from parjanya.webhooks.outbox import Outbox
from parjanya.webhooks.sender import _Parts, backoff_s, deliver_due

SECRET = "whsec_test"


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"id":"t1.0"}'
    header = sign(SECRET, body, timestamp=1_700_000_000)

    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify(SECRET, header, body, now=1_700_000_100)
    assert not verify(SECRET, header, body + b" ", now=1_700_000_100)
    assert not verify("whsec_other", header, body, now=1_700_000_100)
    assert not verify(SECRET, header, body, now=1_700_001_000)  # too old: a replay
    assert not verify(SECRET, "v1=abc", body)


def test_callback_url_is_checked_at_submit_naming_the_field() -> None:
    assert TaskRequest(prompt="x", callback_url="https://hooks.example/p").callback_url
    for bad in ("ftp://hooks.example/", "hooks.example/p", "https://u:p@hooks.example/", ""):
        with pytest.raises(ValidationError) as caught:
            TaskRequest(prompt="x", callback_url=bad)
        assert caught.value.errors()[0]["loc"] == ("callback_url",)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_non_global_addresses_are_refused_by_default(url: str) -> None:
    with pytest.raises(Refused):
        asyncio.run(resolve(url, []))


def test_an_allowed_network_is_reached_at_its_checked_address() -> None:
    allow = [ipaddress.ip_network("127.0.0.0/8")]
    target = asyncio.run(resolve("http://127.0.0.1:8123/hook?x=1", allow))
    assert target.url == "http://127.0.0.1:8123/hook?x=1"
    assert target.host_header == "127.0.0.1:8123" and target.sni_hostname is None


def test_backoff_doubles_and_is_capped() -> None:
    config = WebhookConfig(backoff_s=1, max_backoff_s=5)
    waits = [backoff_s(config, n) for n in (1, 2, 3, 10)]
    assert 1 <= waits[0] <= 1.2 and 2 <= waits[1] <= 2.4 and 4 <= waits[2] <= 4.8
    assert 5 <= waits[3] <= 6


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


def _owed(store: TaskStore) -> list[bytes]:
    """Every task id owed a callback, over the store's shards."""
    return [i for s in keys.all_shards() for i in store.redis.zrange(keys.webhook_outbox(s), 0, -1)]


def _finish(store: TaskStore, callback: str | None) -> str:
    """A task that ends succeeded through the store's own transition."""
    task_id = store.create(
        TaskRequest(prompt="hi", callback_url=callback, tenant="acme"), requeue_after_s=60
    ).task_id
    doc = store.get(task_id)
    assert doc is not None
    claim = store.claim(
        HopMessage(task_id=task_id, hop=0, stage="intake"),
        holding=TaskStatus.classifying,
        lease_ttl_s=30,
        max_deliveries=4,
    )
    doc.status, doc.output = TaskStatus.succeeded, "hello"
    assert store.transition(doc, token=claim.token, hop=0, stage="intake", ttl_s=600)
    return task_id


def _parts(server: fakeredis.FakeServer, handler: httpx.MockTransport, **config: object) -> _Parts:
    aio = fakeredis.FakeAsyncRedis(server=server)
    return _Parts(
        WebhookConfig(allow_networks=["127.0.0.0/8"], **config),  # type: ignore[arg-type]
        Outbox(aio),
        AsyncTaskStore(aio),
        ApiKeyStore(aio),
        httpx.AsyncClient(transport=handler),
    )


@pytest.fixture
def received() -> Iterator[list[httpx.Request]]:
    yield []


def test_a_task_ends_owing_its_callback_and_the_sender_posts_it_signed(
    server: fakeredis.FakeServer, received: list[httpx.Request]
) -> None:
    store = TaskStore(fakeredis.FakeRedis(server=server))
    plain = _finish(store, None)
    task_id = _finish(store, "http://127.0.0.1:8123/hook")
    owed = _owed(store)
    assert owed == [task_id.encode()] and plain.encode() not in owed

    def answer(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(204)

    parts = _parts(server, httpx.MockTransport(answer))
    records = asyncio.run(deliver_due(parts))

    assert [(r.task_id, r.state, r.attempts) for r in records] == [(task_id, "delivered", 1)]
    request = received[0]
    secret = asyncio.run(parts.secrets.webhook_secret("acme"))
    assert verify(secret, request.headers["parjanya-signature"], request.content)
    event = json.loads(request.content)
    assert event["type"] == "task.succeeded" and event["data"]["output"] == "hello"
    assert request.headers["parjanya-event-id"] == event["id"]
    assert _owed(store) == []


def test_a_failed_delivery_is_retried_later_then_recorded_failed(
    server: fakeredis.FakeServer,
) -> None:
    store = TaskStore(fakeredis.FakeRedis(server=server))
    task_id = _finish(store, "http://127.0.0.1:8123/hook")
    parts = _parts(
        server, httpx.MockTransport(lambda r: httpx.Response(500)), max_attempts=2, backoff_s=30
    )

    first = asyncio.run(deliver_due(parts))
    assert [(r.state, r.attempts, r.status_code) for r in first] == [("pending", 1, 500)]
    assert asyncio.run(deliver_due(parts)) == []  # not due yet: backing off
    store.redis.zadd(
        keys.webhook_outbox(keys.shard_of(task_id)), {task_id: 0}
    )  # the backoff has passed
    second = asyncio.run(deliver_due(parts))
    assert [(r.state, r.attempts) for r in second] == [("failed", 2)]
    assert _owed(store) == []


def test_a_private_callback_is_recorded_refused_and_never_sent(
    server: fakeredis.FakeServer, received: list[httpx.Request]
) -> None:
    store = TaskStore(fakeredis.FakeRedis(server=server))
    task_id = _finish(store, "http://10.0.0.7/hook")
    parts = _parts(server, httpx.MockTransport(lambda r: received.append(r) or httpx.Response(200)))

    records = asyncio.run(deliver_due(parts))

    assert [(r.task_id, r.state) for r in records] == [(task_id, "refused")]
    assert received == []
    logged = asyncio.run(parts.outbox.log())
    assert logged[0].state == "refused" and "10.0.0.7" in (logged[0].error or "")


def test_a_cancelled_task_owes_its_callback_too(server: fakeredis.FakeServer) -> None:
    store = TaskStore(fakeredis.FakeRedis(server=server))
    task_id = store.create(
        TaskRequest(prompt="hi", callback_url="http://127.0.0.1:1/h"), requeue_after_s=60
    ).task_id
    assert store.cancel(task_id, ttl_s=60) == "cancelled"
    assert _owed(store) == [task_id.encode()]


def test_a_delivery_held_by_a_sender_that_died_is_taken_over_after_its_lease(
    server: fakeredis.FakeServer, received: list[httpx.Request]
) -> None:
    store = TaskStore(fakeredis.FakeRedis(server=server))
    task_id = _finish(store, "http://127.0.0.1:8123/hook")
    dead = _parts(server, httpx.MockTransport(lambda r: httpx.Response(204)), lease_s=30)
    assert asyncio.run(dead.outbox.claim(lease_s=30, limit=8)) == [task_id]  # then it dies

    alive = _parts(server, httpx.MockTransport(lambda r: received.append(r) or httpx.Response(204)))
    assert asyncio.run(deliver_due(alive)) == []  # leased: not taken twice
    store.redis.zadd(
        keys.webhook_outbox(keys.shard_of(task_id)), {task_id: 0}
    )  # the lease has run out
    assert [r.state for r in asyncio.run(deliver_due(alive))] == ["delivered"]
    assert len(received) == 1
