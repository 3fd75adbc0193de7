"""The HTTP API without workers or Redis: validation, size limits, the OpenAI shapes, health.

The app's clients point at a port where nothing listens: every case here must be answered before
the store is touched, which is also the proof that nothing invalid is ever enqueued (an attempt to
enqueue would fail to connect and answer 500, not the 4xx asserted).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from parjanya.api import create_app
from parjanya.api.openai_schema import ChatCompletionRequest, completion, routing_headers
from parjanya.config import ApiConfig, ParjanyaConfig, Settings
from parjanya.schema import TaskResult, TaskStatus, ToolCall

NOWHERE = "redis://127.0.0.1:1/0"


@pytest.fixture
def api() -> Iterator[TestClient]:
    config = ParjanyaConfig(api=ApiConfig(max_body_bytes=4096, auth="off"))
    with TestClient(create_app(Settings(broker_url=NOWHERE), config)) as client:
        yield client


def test_an_invalid_task_is_a_422_that_names_the_field(api: TestClient) -> None:
    response = api.post("/v1/tasks", json={"prompt": "hi", "max_teir": "low"})
    assert response.status_code == 422
    assert ["body", "max_teir"] in [e["loc"] for e in response.json()["detail"]]

    response = api.post("/v1/tasks", json={"prompt": "hi", "max_output_tokens": 0})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "max_output_tokens"]


def test_a_declared_oversized_body_is_a_413_before_parsing(api: TestClient) -> None:
    response = api.post("/v1/tasks", json={"prompt": "x" * 5000})
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"


def test_a_streamed_oversized_body_without_length_is_a_413(api: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"prompt": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    response = api.post("/v1/tasks", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["limit"] == 4096


def test_stream_true_is_a_clear_400(api: TestClient) -> None:
    body = {"model": "parjanya-auto", "messages": [{"role": "user", "content": "hi"}]}
    response = api.post("/v1/chat/completions", json={**body, "stream": True})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "streaming_unsupported" and error["param"] == "stream"


def test_an_unknown_model_is_a_422_on_model(api: TestClient) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    response = api.post("/v1/chat/completions", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "model"]


def test_a_task_rule_broken_by_a_completion_is_a_422_with_its_path(api: TestClient) -> None:
    body = {
        "model": "parjanya-auto",
        "messages": [{"role": "tool", "content": "42"}],  # a tool message needs tool_call_id
    }
    response = api.post("/v1/chat/completions", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:3] == ["body", "messages", 0]


def test_models_health_and_openapi(api: TestClient) -> None:
    ids = [m["id"] for m in api.get("/v1/models").json()["data"]]
    assert ids == ["parjanya-auto", "parjanya-low", "parjanya-mid", "parjanya-high"]
    assert api.get("/healthz").json() == {"status": "ok"}
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/v1/tasks", "/v1/tasks/{task_id}", "/v1/chat/completions", "/readyz"} <= set(paths)


def test_readyz_is_503_when_the_broker_is_unreachable(api: TestClient) -> None:
    response = api.get("/readyz")
    assert response.status_code == 503
    assert response.json()["broker"] is False


def test_a_pinned_model_pins_the_tier_and_openai_options_map_to_the_task() -> None:
    request = ChatCompletionRequest.model_validate(
        {
            "model": "parjanya-mid",
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "ok"},
            ],
            "max_tokens": 50,
            "stop": "END",
            "response_format": {"type": "json_object"},
            "seed": 7,
            "parjanya": {"sla": "batch", "budget_usd": 0.5},
        }
    )
    task = request.to_task()
    assert task.min_tier == task.max_tier == "mid"
    assert task.max_output_tokens == 50 and task.stop == ["END"]
    assert task.response_format == "json" and task.sla == "batch" and task.budget_usd == 0.5
    assert task.chat_messages()[0].content == "Be brief."
    assert task.chat_messages()[2].tool_calls[0].name == "f"
    assert (
        ChatCompletionRequest(model="parjanya-auto", messages=request.messages).to_task().max_tier
        is None
    )


def test_a_finished_task_answers_in_openais_shape_with_routing_headers() -> None:
    result = TaskResult(
        id="t1",
        status=TaskStatus.succeeded,
        output=None,
        tool_calls=[ToolCall(id="c1", name="lookup", arguments='{"q": 1}')],
        model="sim-small",
        tier_path=["low", "mid"],
        escalations=1,
        tokens_in=10,
        tokens_out=5,
        cost_usd=0.001,
    )
    body = completion(result, "parjanya-auto")
    choice = body["choices"][0]
    assert body["object"] == "chat.completion" and body["model"] == "sim-small"
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"] == {
        "name": "lookup",
        "arguments": '{"q": 1}',
    }
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    assert body["parjanya"]["tier"] == "mid" and body["parjanya"]["escalations"] == 1
    headers = routing_headers(result)
    assert headers["x-parjanya-tier"] == "mid" and headers["x-parjanya-tier-path"] == "low,mid"
    assert headers["x-parjanya-task-id"] == "t1" and headers["x-parjanya-escalations"] == "1"
