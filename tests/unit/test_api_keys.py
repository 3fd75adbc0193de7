"""API keys and tenants on fakeredis (Lua included): who may call, as whom, and how often.

The routes run in-process (TestClient) with no worker, so a task stays queued; over real sockets
the same is shown by tests/integration/test_doors.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import fakeredis
import pytest
from fastapi.testclient import TestClient

from parjanya.api import create_app
from parjanya.api.auth import KeyAccess, OpenAccess, access_for
from parjanya.api.deps import ApiState
from parjanya.api.errors import ApiError
from parjanya.config import ApiConfig, ParjanyaConfig, Settings
from parjanya.resilience.gcra import Demand
from parjanya.resilience.ratelimit_store import (
    MemoryRateLimitStore,
    RedisRateLimitStore,
    Reservation,
)
from parjanya.store import TaskStore
from parjanya.store.aio import AsyncTaskStore
from parjanya.store.apikeys import ApiKey, ApiKeyStore, digest_of


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


def _keys(server: fakeredis.FakeServer) -> ApiKeyStore:
    return ApiKeyStore(fakeredis.FakeAsyncRedis(server=server))


def make_key(server: fakeredis.FakeServer, tenant: str, rate: int | None = None) -> str:
    return asyncio.run(_keys(server).create(tenant, rate_per_minute=rate)).key


@pytest.fixture
def api(server: fakeredis.FakeServer) -> Iterator[TestClient]:
    config = ParjanyaConfig(api=ApiConfig(key_cache_s=0))
    app = create_app(Settings(broker_url="redis://127.0.0.1:1/0"), config)
    with TestClient(app) as client:
        state: ApiState = app.state.parjanya
        aio = fakeredis.FakeAsyncRedis(server=server)
        state.client.store = TaskStore(fakeredis.FakeRedis(server=server))
        state.store = AsyncTaskStore(aio)
        state.access = access_for(config.api, ApiKeyStore(aio), RedisRateLimitStore(aio))
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_the_store_keeps_only_the_digest_and_finds_the_key_by_it(
    server: fakeredis.FakeServer,
) -> None:
    store = _keys(server)
    made = asyncio.run(store.create("acme", rate_per_minute=30))
    raw = fakeredis.FakeRedis(server=server)
    everything = b"".join(
        k + b"".join(raw.hvals(k)) if raw.type(k) == b"hash" else k for k in raw.keys("*")
    )

    assert made.key.encode() not in everything
    assert raw.exists(f"parjanya:apikey:{digest_of(made.key)}")
    found = asyncio.run(store.lookup(made.key))
    assert found is not None and (found.tenant, found.rate_per_minute) == ("acme", 30)
    assert asyncio.run(store.lookup(made.key + "x")) is None
    assert made.webhook_secret.startswith("whsec_")
    assert asyncio.run(store.webhook_secret("acme")) == made.webhook_secret


def test_a_revoked_key_is_gone_and_listing_shows_no_key(server: fakeredis.FakeServer) -> None:
    store = _keys(server)
    made = asyncio.run(store.create("acme"))
    listed = asyncio.run(store.list())
    assert [(r.id, r.tenant) for r in listed] == [(made.record.id, "acme")]

    assert asyncio.run(store.revoke(made.record.id)) is not None
    assert asyncio.run(store.lookup(made.key)) is None
    assert asyncio.run(store.revoke(made.record.id)) is None


def test_the_mode_is_chosen_once_from_config(server: fakeredis.FakeServer) -> None:
    aio = fakeredis.FakeAsyncRedis(server=server)
    parts = (ApiKeyStore(aio), RedisRateLimitStore(aio))
    assert isinstance(access_for(ApiConfig(auth="off"), *parts), OpenAccess)
    assert isinstance(access_for(ApiConfig(), *parts), KeyAccess)


def test_no_key_or_a_bad_key_is_a_401_with_a_bearer_challenge(api: TestClient) -> None:
    for headers in ({}, bearer("pj_nope_nope"), {"Authorization": "Basic Zm9vOmJhcg=="}):
        for method, path in (("GET", "/v1/models"), ("POST", "/v1/tasks"), ("GET", "/v1/tasks/x")):
            response = api.request(method, path, headers=headers, json={"prompt": "hi"})
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["error"]["type"] == "unauthorized"
    assert api.get("/healthz").status_code == 200


def test_the_tenant_comes_from_the_key_and_another_tenant_gets_404(
    api: TestClient, server: fakeredis.FakeServer
) -> None:
    acme, globex = make_key(server, "acme"), make_key(server, "globex")
    submitted = api.post(
        "/v1/tasks", json={"prompt": "hi", "tenant": "globex"}, headers=bearer(acme)
    )
    task_id = submitted.json()["id"]

    assert api.get(f"/v1/tasks/{task_id}", headers=bearer(acme)).json()["tenant"] == "acme"
    for method, params in (("GET", {}), ("GET", {"wait": 1}), ("DELETE", {})):
        response = api.request(
            method, f"/v1/tasks/{task_id}", params=params, headers=bearer(globex)
        )
        assert response.status_code == 404, method
        assert response.json()["error"]["type"] == "task_not_found"
    assert api.get(f"/v1/tasks/{task_id}", headers=bearer(acme)).json()["status"] == "queued"


def test_a_key_over_its_rate_is_a_429_with_retry_after(
    api: TestClient, server: fakeredis.FakeServer
) -> None:
    slow, other = make_key(server, "acme", rate=2), make_key(server, "acme", rate=2)
    answers = [api.get("/v1/models", headers=bearer(slow)).status_code for _ in range(3)]

    assert answers[0] == 200 and 429 in answers
    refused = api.get("/v1/models", headers=bearer(slow))
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert api.get("/v1/models", headers=bearer(other)).status_code == 200  # per key, not tenant


class CountingLimiter(MemoryRateLimitStore):
    def __init__(self) -> None:
        super().__init__(clock=lambda: 1_000.0)  # frozen: only the burst can be spent
        self.calls = 0

    async def reserve(
        self, deployment: str, demands: Sequence[Demand], max_wait_s: float
    ) -> Reservation:
        self.calls += 1
        return await super().reserve(deployment, demands, max_wait_s)


def test_processes_take_permits_a_few_at_a_time_and_together_stay_within_the_burst() -> None:
    record = ApiKey("k1", "acme", 6000, 0.0)  # 100 a second; a 2 s burst is 200 requests
    limiter = CountingLimiter()
    processes = [KeyAccess(ApiKeyStore(None), limiter, 6000, 2.0, 5.0) for _ in range(2)]  # type: ignore[arg-type]

    async def admitted(access: KeyAccess) -> bool:
        try:
            await access._admit(record)
        except ApiError as refused:
            assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
            return False
        return True

    async def run(count: int) -> list[bool]:
        return [await admitted(processes[i % 2]) for i in range(count)]

    assert all(asyncio.run(run(40)))
    assert limiter.calls == 2  # 20 permits per round trip, one trip per process
    answers = asyncio.run(run(300))
    assert 199 <= 40 + sum(answers) <= 201  # the burst, split between the processes
    assert not any(answers[-50:])


def test_every_route_but_health_declares_and_needs_the_bearer_key() -> None:
    """Read from the OpenAPI document: an operation shows the bearer scheme exactly when it
    depends on `current_caller`, so a route added without it shows up here."""
    document = create_app(Settings(), ParjanyaConfig()).openapi()
    operations = {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    open_ones = {key for key, op in operations.items() if not op.get("security")}

    assert open_ones == {("GET", "/healthz"), ("GET", "/readyz")}
    assert {("POST", "/v1/tasks"), ("POST", "/v1/chat/completions"), ("GET", "/v1/models")} <= set(
        operations
    )
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_the_openapi_document_needs_a_key_unless_the_docs_are_public(
    api: TestClient, server: fakeredis.FakeServer
) -> None:
    assert api.get("/openapi.json").status_code == 401
    assert api.get("/docs").status_code == 404  # a browser cannot send the key
    document = api.get("/openapi.json", headers=bearer(make_key(server, "acme")))
    assert document.status_code == 200 and "/v1/tasks" in document.json()["paths"]
    public = ParjanyaConfig(api=ApiConfig(public_docs=True))
    with TestClient(create_app(Settings(broker_url="redis://127.0.0.1:1/0"), public)) as client:
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/docs").status_code == 200
