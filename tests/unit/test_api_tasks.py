"""Task routes against a store on fakeredis, with no worker: a task stays queued, which is what a
chat timeout, a long poll's timeout and a cancel of a queued task need."""

from __future__ import annotations

from collections.abc import Iterator

import fakeredis
import pytest
from fastapi.testclient import TestClient

from parjanya.api import create_app
from parjanya.api.deps import ApiState
from parjanya.config import (
    ApiConfig,
    BudgetsConfig,
    GovernanceConfig,
    ParjanyaConfig,
    Settings,
    TenantBudget,
)
from parjanya.governance.budgets import SpendLedger, day_key, today
from parjanya.limits import RequestLimits
from parjanya.store import TaskStore
from parjanya.store.aio import AsyncTaskStore

CHAT = {"model": "parjanya-auto", "messages": [{"role": "user", "content": "Say hi"}]}


@pytest.fixture
def api() -> Iterator[TestClient]:
    config = ParjanyaConfig(api=ApiConfig(chat_timeout_s=0.2, max_wait_s=0.3, auth="off"))
    app = create_app(Settings(broker_url="redis://127.0.0.1:1/0"), config)
    with TestClient(app) as client:
        state: ApiState = app.state.parjanya
        server = fakeredis.FakeServer()
        state.client.store = TaskStore(fakeredis.FakeRedis(server=server))
        state.store = AsyncTaskStore(fakeredis.FakeAsyncRedis(server=server))
        yield client


def test_a_completion_not_done_in_time_is_a_504_with_the_task_to_read_later(
    api: TestClient,
) -> None:
    response = api.post("/v1/chat/completions", json=CHAT)

    assert response.status_code == 504
    error = response.json()["error"]
    task_id = error["task_id"]
    assert error["type"] == "timeout" and task_id in error["message"]
    assert response.headers["location"] == f"/v1/tasks/{task_id}"
    assert api.get(response.headers["location"]).json()["status"] == "queued"


def test_a_long_poll_answers_the_current_state_after_at_most_max_wait(api: TestClient) -> None:
    task_id = api.post("/v1/tasks", json={"prompt": "hi"}).json()["id"]

    response = api.get(f"/v1/tasks/{task_id}", params={"wait": 3600})

    assert response.status_code == 200 and response.json()["status"] == "queued"
    assert response.elapsed.total_seconds() < 3


def test_cancel_of_a_queued_task_then_of_a_finished_one(api: TestClient) -> None:
    task_id = api.post("/v1/tasks", json={"prompt": "hi"}).json()["id"]

    cancelled = api.delete(f"/v1/tasks/{task_id}")
    assert cancelled.status_code == 200
    assert cancelled.json()["outcome"] == "cancelled"
    assert cancelled.json()["task"]["status"] == "cancelled"
    assert api.get(f"/v1/tasks/{task_id}", params={"wait": 1}).json()["status"] == "cancelled"

    again = api.delete(f"/v1/tasks/{task_id}")
    assert again.status_code == 409 and again.json()["error"]["task_status"] == "cancelled"
    assert api.delete("/v1/tasks/0123456789abcdef").status_code == 404


def test_an_idempotency_key_returns_the_first_task_or_a_409(api: TestClient) -> None:
    first = api.post("/v1/tasks", json={"prompt": "hi", "idempotency_key": "k1"})
    same = api.post("/v1/tasks", json={"prompt": "hi", "idempotency_key": "k1"})
    other = api.post("/v1/tasks", json={"prompt": "bye", "idempotency_key": "k1"})

    assert first.status_code == same.status_code == 202
    assert same.json()["id"] == first.json()["id"] and same.json()["created"] is False
    assert other.status_code == 409
    assert other.json()["error"]["type"] == "idempotency_conflict"
    assert other.json()["error"]["task_id"] == first.json()["id"]


def test_configured_limits_lower_than_the_built_in_ones_are_a_422() -> None:
    config = ParjanyaConfig(limits=RequestLimits(max_prompt_chars=10), api=ApiConfig(auth="off"))
    app = create_app(Settings(broker_url="redis://127.0.0.1:1/0"), config)
    with TestClient(app) as client:
        state: ApiState = app.state.parjanya
        server = fakeredis.FakeServer()
        state.client.store = TaskStore(fakeredis.FakeRedis(server=server))
        state.store = AsyncTaskStore(fakeredis.FakeAsyncRedis(server=server))

        refused = client.post("/v1/tasks", json={"prompt": "x" * 11})
        accepted = client.post("/v1/tasks", json={"prompt": "x" * 10})

    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"][0] == "body"
    assert "limit is 10" in refused.json()["detail"][0]["msg"]
    assert accepted.status_code == 202


def test_a_task_that_ended_expired_reads_expired_with_its_reason(api: TestClient) -> None:
    """A claim after the deadline ends the task in the store; the API shows it as it is."""
    import time

    from parjanya.schema import HopMessage, TaskStatus

    state: ApiState = api.app.state.parjanya  # type: ignore[attr-defined]
    task_id = api.post("/v1/tasks", json={"prompt": "hi", "deadline_s": 0.05}).json()["id"]
    time.sleep(0.1)
    claim = state.client.store.claim(
        HopMessage(task_id=task_id, hop=0, stage="intake"),
        holding=TaskStatus.classifying,
        lease_ttl_s=30,
        max_deliveries=3,
    )
    assert claim.verdict == "terminal"
    body = api.get(f"/v1/tasks/{task_id}").json()
    assert body["status"] == "expired" and body["error"]["type"] == "expired"


def test_a_bad_callback_url_is_a_422_naming_it_on_both_doors(api: TestClient) -> None:
    task = api.post("/v1/tasks", json={"prompt": "hi", "callback_url": "file:///etc/passwd"})
    chat = api.post(
        "/v1/chat/completions", json={**CHAT, "parjanya": {"callback_url": "gopher://x"}}
    )

    assert task.status_code == 422 and task.json()["detail"][0]["loc"] == ["body", "callback_url"]
    assert chat.status_code == 422
    assert chat.json()["detail"][0]["loc"] == ["body", "parjanya", "callback_url"]


def test_a_task_nothing_can_serve_is_a_422_naming_constraints(api: TestClient) -> None:
    body = {"prompt": "Describe the picture.", "constraints": {"capabilities": ["vision"]}}
    response = api.post("/v1/tasks", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "constraints"] and "lacks vision" in detail["msg"]


def test_a_tenant_over_budget_is_a_429_with_retry_after() -> None:
    budgets = BudgetsConfig(tenants={"acme": TenantBudget(daily_usd=1.0)})
    config = ParjanyaConfig(governance=GovernanceConfig(budgets=budgets), api=ApiConfig(auth="off"))
    app = create_app(Settings(broker_url="redis://127.0.0.1:1/0"), config)
    with TestClient(app) as client:
        state: ApiState = app.state.parjanya
        server = fakeredis.FakeServer()
        state.client.store = TaskStore(fakeredis.FakeRedis(server=server))
        state.store = AsyncTaskStore(fakeredis.FakeAsyncRedis(server=server))
        state.spend = SpendLedger(budgets, aio=state.store.redis)
        assert client.post("/v1/tasks", json={"prompt": "hi", "tenant": "acme"}).status_code == 202
        state.client.store.redis.set(day_key("acme", today()), "1.5")
        refused = client.post("/v1/tasks", json={"prompt": "hi", "tenant": "acme"})
        assert refused.status_code == 429
        assert refused.json()["error"]["type"] == "budget_exceeded"
        assert int(refused.headers["retry-after"]) > 0
        assert client.post("/v1/tasks", json={"prompt": "hi", "tenant": "other"}).status_code == 202


def test_a_chat_completion_nothing_can_serve_is_a_422(api: TestClient) -> None:
    body = {**CHAT, "parjanya": {"constraints": {"residency": "eu"}}}
    response = api.post("/v1/chat/completions", json=body)
    assert response.status_code == 422
    assert "residency" in response.json()["detail"][0]["msg"]


def test_a_task_the_api_cancels_is_counted_as_cancelled_on_its_metrics(api: TestClient) -> None:
    from parjanya import metrics

    counted = metrics.TASKS.labels("intake", "cancelled")
    before = counted._value.get()
    task_id = api.post("/v1/tasks", json={"prompt": "hi"}).json()["id"]
    assert api.delete(f"/v1/tasks/{task_id}").json()["outcome"] == "cancelled"
    assert counted._value.get() == before + 1


def test_a_cancel_that_finds_the_task_ended_cancelled_by_another_does_not_count_it_again(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from parjanya import metrics

    state: ApiState = api.app.state.parjanya  # type: ignore[attr-defined]
    task_id = api.post("/v1/tasks", json={"prompt": "cancelled twice over"}).json()["id"]
    real = state.client.store.cancel

    def raced(task: str, *, ttl_s: int) -> str:
        real(task, ttl_s=ttl_s)  # someone else's cancel lands first
        return "terminal"

    monkeypatch.setattr(state.client.store, "cancel", raced)
    counted = metrics.TASKS.labels("intake", "cancelled")
    before = counted._value.get()
    answer = api.delete(f"/v1/tasks/{task_id}")
    assert answer.status_code == 200 and answer.json()["outcome"] == "cancelled"
    assert counted._value.get() == before  # whoever ended it counted it
