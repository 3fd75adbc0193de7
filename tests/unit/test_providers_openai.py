"""The OpenAI adapter over httpx.MockTransport: payload, parsing, and every failure's type."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from parjanya.config import Deployment
from parjanya.providers import (
    AuthError,
    BadRequest,
    ChatRequest,
    ChatResponse,
    ConnectFailed,
    ContentFiltered,
    ContextTooLong,
    MalformedResponse,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    ServerError,
    build_provider,
)
from parjanya.providers.anthropic import AnthropicProvider
from parjanya.providers.http import parse_retry_after
from parjanya.providers.openai import OpenAIProvider
from parjanya.schema import ChatMessage, ToolCall
from parjanya.sim import SimConfig, SimProvider, error_marker, tool_marker

KEY_ENV = "PARJANYA_TEST_OPENAI_KEY"
KEY = "sk-test-Zx9SECRETvalue123"

DEPLOYMENT = Deployment(
    name="primary",
    base_url="http://model.test/v1/",
    model="gpt-test",
    api_key_env=KEY_ENV,
    price_in_per_mtok=1.0,
    price_out_per_mtok=2.0,
    context_window=8_000,
    timeout_s=5.0,
)
REQUEST = ChatRequest(messages=[ChatMessage(role="user", content="What is 2+2?")], max_tokens=64)

Handler = (
    Callable[[httpx.Request], httpx.Response]
    | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]
)


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def completion(
    text: str | None = "4",
    *,
    finish: str | None = "stop",
    logprobs: list[float] | None = None,
    usage: tuple[int, int] | None = (12, 3),
) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": finish,
    }
    if logprobs is not None:
        choice["logprobs"] = {"content": [{"token": "t", "logprob": lp} for lp in logprobs]}
    body: dict[str, Any] = {"id": "chatcmpl-1", "model": "gpt-test-0613", "choices": [choice]}
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1]}
    return body


def call(
    handler: Handler, request: ChatRequest = REQUEST, deployment: Deployment = DEPLOYMENT
) -> ChatResponse:
    async def go() -> ChatResponse:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await OpenAIProvider(deployment, client).chat(request)

    return asyncio.run(go())


def failure(handler: Handler, **kwargs: Any) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        call(handler, **kwargs)
    return info.value


def reply(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers=headers)
        return httpx.Response(status, json=body if body is not None else {}, headers=headers)

    return handler


def raising(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


# --- the happy path ----------------------------------------------------------------------------


def test_sends_openai_payload_with_bearer_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=completion())

    request = ChatRequest(
        messages=[ChatMessage(role="system", content="Be brief."), *REQUEST.messages],
        max_tokens=32,
        temperature=0.2,
        response_format="json",
        stop=["\n\n"],
    )
    call(handler, request)

    (sent,) = seen
    assert sent.method == "POST"
    assert str(sent.url) == "http://model.test/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(sent.content) == {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 2+2?"},
        ],
        "max_tokens": 32,
        "temperature": 0.2,
        "stop": ["\n\n"],
        "logprobs": True,
        "response_format": {"type": "json_object"},
    }
    assert sent.extensions["timeout"]["read"] == DEPLOYMENT.timeout_s


def test_optional_fields_are_left_out_and_no_key_means_no_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=completion())

    keyless = DEPLOYMENT.model_copy(update={"api_key_env": None})
    call(handler, REQUEST.model_copy(update={"logprobs": False}), keyless)

    body = json.loads(seen[0].content)
    assert set(body) == {"model", "messages", "max_tokens"}
    assert "authorization" not in seen[0].headers


def test_parses_text_usage_and_logprobs() -> None:
    body = completion("4", logprobs=[-0.01, -0.2, -0.05], usage=(12, 3))
    response = call(reply(200, body))

    assert response.text == "4"
    assert response.finish_reason == "stop"
    assert response.model == "gpt-test-0613"
    assert (response.tokens_in, response.tokens_out) == (12, 3)
    assert response.logprobs == [-0.01, -0.2, -0.05]
    assert response.response_id == "chatcmpl-1"
    assert response.deployment == "primary"
    assert response.latency_s >= 0


def test_missing_usage_logprobs_and_model_default_sensibly() -> None:
    body = completion("ok", usage=None)
    del body["model"]
    response = call(reply(200, body))
    assert (response.tokens_in, response.tokens_out, response.logprobs) == (0, 0, None)
    assert response.model == "gpt-test"


def test_refusal_field_becomes_text_for_the_confidence_checker() -> None:
    body = completion(None)
    body["choices"][0]["message"]["refusal"] = "I can't help with that."
    assert call(reply(200, body)).text == "I can't help with that."


# --- failures ----------------------------------------------------------------------------------

OPENAI_ERROR = {"error": {"message": "nope", "type": "invalid_request_error", "code": None}}


def error_body(code: str, message: str = "refused") -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}


@pytest.mark.parametrize(
    ("status", "body", "expected", "error_type"),
    [
        (429, OPENAI_ERROR, RateLimited, "rate_limited"),
        (408, OPENAI_ERROR, ProviderTimeout, "timeout"),
        (504, "gateway timeout", ProviderTimeout, "timeout"),
        (500, OPENAI_ERROR, ServerError, "server_error"),
        (502, "<html>bad gateway</html>", ServerError, "server_error"),
        (503, OPENAI_ERROR, ServerError, "server_error"),
        (401, OPENAI_ERROR, AuthError, "auth_error"),
        (403, OPENAI_ERROR, AuthError, "auth_error"),
        (400, error_body("context_length_exceeded"), ContextTooLong, "context_too_long"),
        (413, "payload too large", ContextTooLong, "context_too_long"),
        (400, error_body("content_filter"), ContentFiltered, "content_filtered"),
        (400, error_body("content_policy_violation"), ContentFiltered, "content_filtered"),
        (400, OPENAI_ERROR, BadRequest, "bad_request"),
        (404, OPENAI_ERROR, BadRequest, "bad_request"),
        (422, "unprocessable", BadRequest, "bad_request"),
        (302, "", MalformedResponse, "malformed_response"),
    ],
)
def test_status_maps_into_taxonomy(
    status: int, body: Any, expected: type[ProviderError], error_type: str
) -> None:
    error = failure(reply(status, body))
    assert type(error) is expected
    assert error.error_type == error_type
    assert error.status == status
    assert error.deployment == "primary"
    assert str(status) in str(error)


def test_error_message_carries_the_vendor_detail() -> None:
    error = failure(reply(400, error_body("context_length_exceeded", "maximum context is 8192")))
    assert "maximum context is 8192" in str(error)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("not json at all", "non-JSON body"),
        ({"id": "x"}, "no choices"),
        ({"choices": []}, "empty choices"),
        ({"choices": [{"finish_reason": "stop"}]}, "no message"),
        ({"choices": [{"message": {"role": "assistant"}}]}, "no content key"),
        ({"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "many"}}, "usage"),
    ],
)
def test_unusable_2xx_body_is_malformed(body: Any, why: str) -> None:
    error = failure(reply(200, body))
    assert isinstance(error, MalformedResponse), why
    assert error.error_type == "malformed_response"


def test_content_filter_finish_is_content_filtered() -> None:
    error = failure(reply(200, completion("partial", finish="content_filter")))
    assert isinstance(error, ContentFiltered)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), ConnectFailed),
        (httpx.ReadError("connection reset by peer"), ConnectFailed),
        (httpx.RemoteProtocolError("server disconnected"), ConnectFailed),
        (httpx.ConnectTimeout("timed out"), ProviderTimeout),
        (httpx.ReadTimeout("timed out"), ProviderTimeout),
        (httpx.PoolTimeout("timed out"), ProviderTimeout),
        (httpx.DecodingError("bad gzip"), MalformedResponse),
        (httpx.UnsupportedProtocol("ftp"), BadRequest),
    ],
)
def test_transport_exception_maps_into_taxonomy(
    exc: Exception, expected: type[ProviderError]
) -> None:
    error = failure(raising(exc))
    assert type(error) is expected
    assert type(exc).__name__ in str(error)
    assert error.__cause__ is None  # the httpx exception (and its request headers) is dropped


def test_overall_deadline_is_a_timeout() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json=completion())

    error = failure(slow, deployment=DEPLOYMENT.model_copy(update={"timeout_s": 0.05}))
    assert isinstance(error, ProviderTimeout)


def test_unset_key_variable_is_an_auth_error_without_a_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(KEY_ENV)
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json=completion())

    error = failure(handler)
    assert isinstance(error, AuthError)
    assert KEY_ENV in str(error)
    assert calls == []


# --- Retry-After -------------------------------------------------------------------------------


def test_429_carries_retry_after_seconds() -> None:
    error = failure(reply(429, OPENAI_ERROR, {"Retry-After": "7"}))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 7.0


def test_429_without_retry_after() -> None:
    error = failure(reply(429, OPENAI_ERROR))
    assert isinstance(error, RateLimited)
    assert error.retry_after is None


NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"Retry-After": "-4"}, 0.0),
        ({"Retry-After": format_datetime(NOW + timedelta(seconds=30), usegmt=True)}, 30.0),
        ({"Retry-After": format_datetime(NOW - timedelta(seconds=30), usegmt=True)}, 0.0),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "nan"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(httpx.Headers(headers), now=NOW) == expected


# --- secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [KEY, "plainsecretvalue42"])
def test_key_is_never_in_an_error(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv(KEY_ENV, key)
    echo = {"error": {"message": f"Incorrect API key: {key}; sent Bearer {key}", "code": "x"}}
    cases: list[Handler] = [
        reply(401, echo),
        reply(500, f"upstream said Authorization: Bearer {key}"),
        raising(httpx.ConnectError(f"failed with api_key={key}")),
    ]
    for handler in cases:
        error = failure(handler)
        for text in (str(error), repr(error), error.message, str(error.args)):
            assert key not in text
        assert key not in repr(pickle.loads(pickle.dumps(error)))


def test_errors_pickle_with_their_attributes() -> None:
    error = failure(reply(429, OPENAI_ERROR, {"Retry-After": "2"}))
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is RateLimited
    assert (copy.deployment, copy.retry_after, copy.status, str(copy)) == (
        "primary",
        2.0,
        429,
        str(error),
    )


def test_provider_repr_has_no_key() -> None:
    client = httpx.AsyncClient()
    provider = OpenAIProvider(DEPLOYMENT, client)
    assert KEY not in repr(provider)
    assert KEY not in repr(vars(provider))
    asyncio.run(client.aclose())


# --- registry ----------------------------------------------------------------------------------


def test_build_provider_by_kind() -> None:
    client = httpx.AsyncClient()
    assert isinstance(build_provider(DEPLOYMENT, client), OpenAIProvider)
    anthropic = DEPLOYMENT.model_copy(update={"provider": "anthropic"})
    assert isinstance(build_provider(anthropic, client), AnthropicProvider)
    with pytest.raises(NotImplementedError, match="vertex"):
        build_provider(
            DEPLOYMENT.model_construct(**{**dict(DEPLOYMENT), "provider": "vertex"}), client
        )
    asyncio.run(client.aclose())


# --- tools -------------------------------------------------------------------------------------

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def sent_body(request: ChatRequest) -> dict[str, Any]:
    seen: list[httpx.Request] = []

    def handler(http_request: httpx.Request) -> httpx.Response:
        seen.append(http_request)
        return httpx.Response(200, json=completion())

    call(handler, request)
    body: dict[str, Any] = json.loads(seen[0].content)
    return body


@pytest.mark.parametrize(
    "choice", [None, "auto", "none", "required", {"type": "function", "function": {"name": "x"}}]
)
def test_tools_and_tool_choice_are_sent_as_given(choice: Any) -> None:
    body = sent_body(REQUEST.model_copy(update={"tools": [WEATHER], "tool_choice": choice}))
    assert body["tools"] == [WEATHER]
    assert body.get("tool_choice") == choice


def test_tool_choice_without_tools_is_not_sent() -> None:
    body = sent_body(REQUEST.model_copy(update={"tool_choice": "required", "tools": []}))
    assert "tools" not in body and "tool_choice" not in body


def test_a_tool_result_names_its_call_by_tool_call_id() -> None:
    result = ChatMessage(role="tool", tool_call_id="call_1", content='{"temp": 21}')
    body = sent_body(REQUEST.model_copy(update={"messages": [*REQUEST.messages, result]}))
    assert body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": '{"temp": 21}',
    }


def test_an_assistant_tool_call_is_sent_nested_with_null_content() -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Pune"}')
    asked = ChatMessage(role="assistant", tool_calls=[call])
    body = sent_body(REQUEST.model_copy(update={"messages": [*REQUEST.messages, asked]}))
    assert body["messages"][-1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Pune"}'},
            }
        ],
    }


def test_tool_calls_are_parsed_with_null_content() -> None:
    body = completion(None, finish="tool_calls")
    body["choices"][0]["message"]["tool_calls"] = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Pune"}'},
        },
        {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": "{}"}},
    ]
    response = call(reply(200, body))
    assert response.text == "" and response.finish_reason == "tool_calls"
    assert response.tool_calls == [
        ToolCall(id="call_1", name="get_weather", arguments='{"city": "Pune"}'),
        ToolCall(id="call_2", name="now", arguments="{}"),
    ]


def test_a_tool_call_without_a_name_is_malformed() -> None:
    body = completion(None, finish="tool_calls")
    body["choices"][0]["message"]["tool_calls"] = [{"id": "call_1", "function": {}}]
    assert isinstance(failure(reply(200, body)), MalformedResponse)


# --- against the sim (no sockets) --------------------------------------------------------------

SIM = DEPLOYMENT.model_copy(update={"base_url": "http://sim/v1", "model": "sim-large"})


def through_sim(request: ChatRequest, deployment: Deployment = SIM) -> ChatResponse | ProviderError:
    sim = SimProvider(SimConfig(latency_scale=0))

    async def go() -> ChatResponse | ProviderError:
        async with httpx.AsyncClient(transport=sim.mock_transport()) as client:
            try:
                return await OpenAIProvider(deployment, client).chat(request)
            except ProviderError as exc:
                return exc

    return asyncio.run(go())


def test_sim_tool_call_round_trip() -> None:
    prompt = f"What is the weather in Pune? {tool_marker('get_weather')}"
    first = ChatRequest(messages=[ChatMessage(role="user", content=prompt)], tools=[WEATHER])
    called = through_sim(first)
    assert isinstance(called, ChatResponse)
    assert called.finish_reason == "tool_calls" and called.text == ""
    (tool_call,) = called.tool_calls
    assert tool_call.name == "get_weather" and tool_call.id.startswith("call_")
    assert json.loads(tool_call.arguments) == {"query": "What is the weather in Pune"}

    asked = ChatMessage(role="assistant", tool_calls=[tool_call])
    result = ChatMessage(role="tool", tool_call_id=tool_call.id, content='{"temp_c": 31}')
    conversation = [*first.messages, asked, result]
    answered = through_sim(first.model_copy(update={"messages": conversation}))
    assert isinstance(answered, ChatResponse)
    assert answered.finish_reason == "stop" and answered.tool_calls == []
    assert answered.text.startswith("[sim-large] ") and answered.logprobs


@pytest.mark.parametrize(
    ("fault", "expected", "status"),
    [
        ("429", RateLimited, 429),
        ("500", ServerError, 500),
        ("503", ServerError, 503),
        ("context", ContextTooLong, 400),
        ("filtered", ContentFiltered, 200),
        ("malformed", MalformedResponse, 200),
    ],
)
def test_sim_faults_map_into_taxonomy(
    fault: str, expected: type[ProviderError], status: int
) -> None:
    request = ChatRequest(messages=[ChatMessage(role="user", content=f"Hi {error_marker(fault)}")])
    error = through_sim(request)
    assert type(error) is expected and error.status == status


# --- keys never leak, logs included ------------------------------------------------------------


@pytest.mark.parametrize("key", [KEY, "plainsecretvalue42"])
def test_key_is_in_no_log_record_or_response(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, key: str
) -> None:
    monkeypatch.setenv(KEY_ENV, key)
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included

    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json=completion())

    quick = DEPLOYMENT.model_copy(update={"timeout_s": 0.05})
    errors = [
        failure(reply(401, {"error": {"message": f"Incorrect API key {key}", "code": "x"}})),
        failure(reply(500, f"upstream echoed {key}")),
        failure(hang, deployment=quick),
        failure(reply(200, f'{{"choices": [{{"message": {{"content": "{key}"')),
    ]
    response = call(reply(200, completion()))

    assert [type(e) for e in errors] == [AuthError, ServerError, ProviderTimeout, MalformedResponse]
    for error in errors:
        assert key not in str(error) and key not in repr(error)
    assert key not in response.model_dump_json()
    assert any(r.name == "httpx" for r in caplog.records)
    for record in caplog.records:
        assert key not in record.getMessage() and key not in str(record.args)
