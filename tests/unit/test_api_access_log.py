"""The API's access log: one JSON `request` event per request, with its route template, status,
time, tenant and task, and never a word of the prompt (routes in-process, stores on fakeredis)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator

import fakeredis
import pytest
from fastapi.testclient import TestClient

from parjanya.api import create_app
from parjanya.api.auth import access_for
from parjanya.api.deps import ApiState
from parjanya.config import ApiConfig, ParjanyaConfig, Settings
from parjanya.observe.logs import configure_logging
from parjanya.resilience.ratelimit_store import RedisRateLimitStore
from parjanya.store import TaskStore
from parjanya.store.aio import AsyncTaskStore
from parjanya.store.apikeys import ApiKeyStore

SECRET = "the-vault-code-is-7731"
FIELDS = {"method", "route", "status", "ms", "tenant", "task_id"}


@pytest.fixture
def api(out: io.StringIO) -> Iterator[tuple[TestClient, str]]:
    """An app whose routes need a key, and the key of tenant `acme`."""
    server = fakeredis.FakeServer()
    config = ParjanyaConfig(api=ApiConfig(key_cache_s=0, chat_timeout_s=0.2, max_body_bytes=4096))
    app = create_app(Settings(broker_url="redis://127.0.0.1:1/0"), config)
    with TestClient(app) as client:
        state: ApiState = app.state.parjanya
        aio = fakeredis.FakeAsyncRedis(server=server)
        state.client.store = TaskStore(fakeredis.FakeRedis(server=server))
        state.store = AsyncTaskStore(aio)
        keys = ApiKeyStore(aio)
        state.access = access_for(config.api, keys, RedisRateLimitStore(aio))
        key = asyncio.run(ApiKeyStore(fakeredis.FakeAsyncRedis(server=server)).create("acme")).key
        client.headers["Authorization"] = f"Bearer {key}"
        yield client, key


def requests(buffer: io.StringIO) -> list[dict[str, object]]:
    events = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    return [e for e in events if e.get("event") == "request"]


def test_each_request_is_one_event_with_its_route_template_tenant_and_task(
    api: tuple[TestClient, str], out: io.StringIO
) -> None:
    client, _ = api
    task_id = client.post("/v1/tasks", json={"prompt": f"Say {SECRET}"}).json()["id"]
    assert client.get(f"/v1/tasks/{task_id}").status_code == 200
    assert client.get("/healthz").status_code == 200  # a passing probe: debug, below info

    submitted, read = requests(out)
    assert submitted.keys() >= FIELDS
    assert submitted["logger"] == "parjanya.api" and submitted["level"] == "info"
    assert (submitted["method"], submitted["route"], submitted["status"]) == (
        "POST",
        "/v1/tasks",
        202,
    )
    assert submitted["tenant"] == "acme" and submitted["task_id"] == task_id  # from Location
    assert isinstance(submitted["ms"], float) and submitted["ms"] >= 0
    assert (read["method"], read["route"], read["status"]) == ("GET", "/v1/tasks/{task_id}", 200)
    assert read["tenant"] == "acme" and read["task_id"] == task_id


def test_a_passing_probe_is_logged_at_debug_and_a_failing_one_as_a_warning(
    out: io.StringIO,
) -> None:
    from starlette.types import Message, Receive, Scope, Send

    from parjanya.api.access_log import AccessLog

    configure_logging("json", level="DEBUG", stream=out)

    def answering(status: int) -> AccessLog:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        return AccessLog(app)

    class Route:
        path = "/readyz"

    async def nothing() -> Message:
        return {"type": "http.request", "body": b""}

    async def ignore(message: Message) -> None:
        return None

    scope: Scope = {"type": "http", "method": "GET", "path": "/readyz", "route": Route()}
    asyncio.run(answering(200)(dict(scope), nothing, ignore))
    asyncio.run(answering(503)(dict(scope), nothing, ignore))
    passed, failed = requests(out)
    assert (passed["route"], passed["level"], passed["tenant"]) == ("/readyz", "debug", None)
    assert (failed["status"], failed["level"]) == (503, "warning")


def test_prompt_text_never_reaches_the_log_whatever_the_route_answers(
    api: tuple[TestClient, str], out: io.StringIO
) -> None:
    client, _ = api
    chat = {"model": "parjanya-auto", "messages": [{"role": "user", "content": f"Tell {SECRET}"}]}
    timed_out = client.post("/v1/chat/completions", json=chat)
    invalid = client.post("/v1/tasks", json={"prompt": SECRET, "max_teir": "low"})
    too_big = client.post("/v1/tasks", json={"prompt": SECRET * 500})
    foreign = client.get("/v1/tasks/t-unknown", headers={"Authorization": "Bearer pj_00_nope"})

    statuses = [r.status_code for r in (timed_out, invalid, too_big, foreign)]
    assert statuses == [504, 422, 413, 401]
    events = requests(out)
    assert [e["status"] for e in events] == statuses
    assert events[0]["route"] == "/v1/chat/completions"
    assert events[0]["task_id"] == timed_out.json()["error"]["task_id"]  # x-parjanya-task-id
    assert events[1]["tenant"] == "acme" and events[1]["task_id"] is None
    assert events[3]["route"] == "/v1/tasks/{task_id}" and events[3]["tenant"] is None
    assert events[3]["task_id"] == "t-unknown"  # the path's, though no key was valid
    assert SECRET not in out.getvalue()


def test_a_path_no_route_matches_is_logged_without_it(
    api: tuple[TestClient, str], out: io.StringIO
) -> None:
    client, _ = api
    assert client.get("/nowhere/at-all").status_code == 404
    (event,) = requests(out)
    assert event["route"] is None and event["status"] == 404 and event["task_id"] is None


def test_a_request_that_raised_is_a_500_and_one_given_up_on_a_499(out: io.StringIO) -> None:
    from starlette.types import Message, Receive, Scope, Send

    from parjanya.api.access_log import AccessLog

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("a bug")

    async def abandoned(scope: Scope, receive: Receive, send: Send) -> None:
        raise asyncio.CancelledError

    async def nothing() -> Message:
        return {"type": "http.request", "body": b""}

    async def ignore(message: Message) -> None:
        return None

    scope: Scope = {"type": "http", "method": "GET", "path": "/v1/tasks/x", "headers": []}
    with pytest.raises(RuntimeError):
        asyncio.run(AccessLog(broken)(dict(scope), nothing, ignore))
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(AccessLog(abandoned)(dict(scope), nothing, ignore))
    failed, gone = requests(out)
    assert (failed["status"], failed["level"]) == (500, "warning")
    assert (gone["status"], gone["level"]) == (499, "info")
