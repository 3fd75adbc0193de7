"""The Anthropic adapter over httpx.MockTransport and the sim: translation both ways, every failure.

No sockets: hand-written handlers check the exact wire format, and `SimProvider.mock_transport()`
checks that adapter and sim agree (tests/integration/test_adapters_socket.py does it over TCP).
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
from collections.abc import Callable, Coroutine
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
from parjanya.providers.anthropic import (
    ANTHROPIC_VERSION,
    JSON_INSTRUCTION,
    AnthropicProvider,
)
from parjanya.schema import ChatMessage, ToolCall
from parjanya.sim import SimConfig, SimProvider, error_marker, prompt_key, tool_marker

KEY_ENV = "PARJANYA_TEST_KEY"
KEY = "sk-test-SECRET123"

DEPLOYMENT = Deployment(
    name="claude",
    provider="anthropic",
    base_url="https://anthropic.test/v1/",
    model="claude-test",
    api_key_env=KEY_ENV,
    price_in_per_mtok=3.0,
    price_out_per_mtok=15.0,
    context_window=200_000,
    timeout_s=5.0,
)
USER = ChatMessage(role="user", content="What is 2+2?")
REQUEST = ChatRequest(messages=[USER], max_tokens=64)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}

Handler = (
    Callable[[httpx.Request], httpx.Response]
    | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]
)


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def message(
    *blocks: dict[str, Any], stop: str | None = "end_turn", usage: tuple[int, int] | None = (21, 4)
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-test-20260101",
        "content": list(blocks) or [{"type": "text", "text": "4"}],
        "stop_reason": stop,
        "stop_sequence": None,
    }
    if usage is not None:
        body["usage"] = {"input_tokens": usage[0], "output_tokens": usage[1]}
    return body


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def call(
    handler: Handler, request: ChatRequest = REQUEST, deployment: Deployment = DEPLOYMENT
) -> ChatResponse:
    async def go() -> ChatResponse:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await AnthropicProvider(deployment, client).chat(request)

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


def sent(request: ChatRequest, deployment: Deployment = DEPLOYMENT) -> httpx.Request:
    """The HTTP request the adapter makes for `request` (answered with a plain message)."""
    seen: list[httpx.Request] = []

    def handler(http_request: httpx.Request) -> httpx.Response:
        seen.append(http_request)
        return httpx.Response(200, json=message())

    call(handler, request, deployment)
    (only,) = seen
    return only


def payload(request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(sent(request).content)
    return body


# --- request: headers and fields -----------------------------------------------------------------


def test_posts_to_messages_with_key_version_and_required_max_tokens() -> None:
    request = ChatRequest(
        messages=[ChatMessage(role="system", content="Be brief."), USER],
        max_tokens=32,
        temperature=0.2,
        stop=["\n\nHuman:"],
    )
    http = sent(request)

    assert http.method == "POST"
    assert str(http.url) == "https://anthropic.test/v1/messages"
    assert http.headers["x-api-key"] == KEY
    assert http.headers["anthropic-version"] == ANTHROPIC_VERSION == "2023-06-01"
    assert http.headers["content-type"] == "application/json"
    assert "authorization" not in http.headers
    assert json.loads(http.content) == {
        "model": "claude-test",
        "max_tokens": 32,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [text("What is 2+2?")]}],
        "stop_sequences": ["\n\nHuman:"],
        "temperature": 0.2,
    }
    assert http.extensions["timeout"]["read"] == DEPLOYMENT.timeout_s


def test_optional_fields_are_left_out_and_no_key_means_no_header() -> None:
    keyless = DEPLOYMENT.model_copy(update={"api_key_env": None})
    http = sent(REQUEST.model_copy(update={"logprobs": True, "stop": []}), keyless)
    assert set(json.loads(http.content)) == {"model", "max_tokens", "messages"}
    assert "x-api-key" not in http.headers
    assert http.headers["anthropic-version"] == ANTHROPIC_VERSION


def test_temperature_is_capped_at_anthropics_maximum() -> None:
    assert payload(REQUEST.model_copy(update={"temperature": 1.7}))["temperature"] == 1.0
    assert payload(REQUEST.model_copy(update={"temperature": 0.0}))["temperature"] == 0.0


def test_system_messages_are_lifted_and_turns_alternate() -> None:
    request = ChatRequest(
        messages=[
            ChatMessage(role="system", content="You are terse."),
            ChatMessage(role="user", content="First."),
            ChatMessage(role="user", content="Second."),
            ChatMessage(role="developer", content="Answer in English."),
            ChatMessage(role="assistant", content="Noted."),
            ChatMessage(role="assistant", content=""),
            ChatMessage(role="assistant", content="Go on."),
            ChatMessage(role="user", content="Third."),
        ]
    )
    body = payload(request)
    assert body["system"] == "You are terse.\n\nAnswer in English."
    assert body["messages"] == [
        {"role": "user", "content": [text("First."), text("Second.")]},
        {"role": "assistant", "content": [text("Noted."), text("Go on.")]},
        {"role": "user", "content": [text("Third.")]},
    ]


def test_tool_results_become_tool_result_blocks_first_in_their_turn() -> None:
    request = ChatRequest(
        messages=[
            USER,
            ChatMessage(role="assistant", content="Let me check."),
            ChatMessage(role="user", content="And be quick."),
            ChatMessage(role="tool", tool_call_id="toolu_01", content='{"temp": 21}'),
        ]
    )
    assert payload(request)["messages"][-1] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": '{"temp": 21}'},
            text("And be quick."),
        ],
    }


def test_json_mode_asks_in_the_system_prompt_without_a_prefill() -> None:
    body = payload(
        ChatRequest(
            messages=[ChatMessage(role="system", content="Be brief."), USER],
            response_format="json",
        )
    )
    assert body["system"] == f"Be brief.\n\n{JSON_INSTRUCTION}"
    assert body["messages"][-1]["role"] == "user"  # no assistant "{" prefill
    assert "response_format" not in body
    alone = payload(ChatRequest(messages=[USER], response_format="json"))
    assert alone["system"] == JSON_INSTRUCTION


def test_json_mode_unwraps_a_fenced_reply_and_text_mode_does_not() -> None:
    fenced = '```json\n{"answer": 4}\n```'
    json_request = REQUEST.model_copy(update={"response_format": "json"})
    assert call(reply(200, message(text(fenced))), json_request).text == '{"answer": 4}'
    assert call(reply(200, message(text(fenced)))).text == fenced
    plain = '{"answer": 4}'
    assert call(reply(200, message(text(plain))), json_request).text == plain


# --- request: tools ------------------------------------------------------------------------------


def test_tools_are_translated_to_input_schemas() -> None:
    bare = {"type": "function", "function": {"name": "now"}}
    body = payload(REQUEST.model_copy(update={"tools": [WEATHER, bare]}))
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body  # Anthropic's default is auto


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
    ],
)
def test_tool_choice_maps(choice: Any, expected: dict[str, Any]) -> None:
    body = payload(REQUEST.model_copy(update={"tools": [WEATHER], "tool_choice": choice}))
    assert body["tool_choice"] == expected
    assert [t["name"] for t in body["tools"]] == ["get_weather"]


def test_tool_choice_none_sends_no_tools_and_choice_without_tools_is_ignored() -> None:
    none = payload(REQUEST.model_copy(update={"tools": [WEATHER], "tool_choice": "none"}))
    assert "tools" not in none and "tool_choice" not in none
    alone = payload(REQUEST.model_copy(update={"tool_choice": "required"}))
    assert "tools" not in alone and "tool_choice" not in alone


@pytest.mark.parametrize(
    "update",
    [
        {"tools": [WEATHER], "tool_choice": "sometimes"},
        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {}}},
        {"tools": [{"type": "retrieval"}]},
        {"tools": [{"type": "function", "function": {"description": "no name"}}]},
    ],
)
def test_untranslatable_tools_are_a_bad_request_without_a_call(update: dict[str, Any]) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json=message())

    error = failure(handler, request=REQUEST.model_copy(update=update))
    assert type(error) is BadRequest and error.status is None
    assert calls == []


# --- response ------------------------------------------------------------------------------------


def test_parses_text_blocks_usage_and_ids() -> None:
    body = message(text("2 + 2 "), {"type": "thinking", "thinking": "..."}, text("= 4"))
    response = call(reply(200, body))
    assert response.text == "2 + 2 = 4"
    assert response.finish_reason == "stop"
    assert response.model == "claude-test-20260101"
    assert (response.tokens_in, response.tokens_out) == (21, 4)
    assert response.logprobs is None
    assert response.response_id == "msg_01"
    assert response.deployment == "claude"
    assert response.tool_calls == [] and response.latency_s >= 0


def test_missing_usage_and_model_default_sensibly() -> None:
    body = message(usage=None)
    del body["model"]
    response = call(reply(200, body))
    assert (response.tokens_in, response.tokens_out, response.model) == (0, 0, "claude-test")


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("pause_turn", "pause_turn"),
        (None, None),
    ],
)
def test_stop_reason_maps_to_finish_reason(stop_reason: str | None, finish: str | None) -> None:
    assert call(reply(200, message(stop=stop_reason))).finish_reason == finish


def test_tool_use_blocks_become_tool_calls() -> None:
    body = message(
        text("Checking."),
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Pune"}},
        {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
        stop="tool_use",
    )
    response = call(reply(200, body))
    assert response.text == "Checking."
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls == [
        ToolCall(id="toolu_1", name="get_weather", arguments='{"city": "Pune"}'),
        ToolCall(id="toolu_2", name="now", arguments="{}"),
    ]
    assert json.loads(response.tool_calls[0].arguments) == {"city": "Pune"}


def test_refusal_is_content_filtered() -> None:
    error = failure(reply(200, message(text("I can't"), stop="refusal")))
    assert isinstance(error, ContentFiltered) and error.status == 200


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("not json at all", "non-JSON body"),
        ({"id": "x", "type": "message"}, "no content"),
        ({"type": "error", "error": {"type": "api_error"}, "content": []}, "an error body"),
        ({"content": [{"type": "text"}]}, "text block without text"),
        ({"content": [{"type": "tool_use", "id": "t", "input": {}}]}, "tool_use without name"),
        ({"content": [{"type": "tool_use", "id": "t", "name": "x", "input": []}]}, "bad input"),
        ({"content": [], "usage": {"input_tokens": -1}}, "usage"),
    ],
)
def test_unusable_2xx_body_is_malformed(body: Any, why: str) -> None:
    error = failure(reply(200, body))
    assert isinstance(error, MalformedResponse), why
    assert error.error_type == "malformed_response"


# --- failures ------------------------------------------------------------------------------------


def anthropic_error(kind: str, text: str = "refused") -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": text}, "request_id": "req_1"}


TOO_LONG = "prompt is too long: 210000 tokens > 200000 maximum"
EXCEEDS = "input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (429, anthropic_error("rate_limit_error"), RateLimited),
        (529, anthropic_error("overloaded_error", "Overloaded"), ServerError),
        (529, "", ServerError),
        (500, anthropic_error("api_error"), ServerError),
        (502, "<html>bad gateway</html>", ServerError),
        (503, "unavailable", ServerError),
        (504, anthropic_error("timeout_error"), ProviderTimeout),
        (504, "gateway timeout", ProviderTimeout),
        (401, anthropic_error("authentication_error"), AuthError),
        (403, anthropic_error("permission_error"), AuthError),
        (402, anthropic_error("billing_error"), AuthError),
        (400, anthropic_error("invalid_request_error", TOO_LONG), ContextTooLong),
        (400, anthropic_error("invalid_request_error", EXCEEDS), ContextTooLong),
        (413, anthropic_error("request_too_large"), ContextTooLong),
        (413, "<html>413 Request Entity Too Large</html>", ContextTooLong),
        (400, anthropic_error("invalid_request_error", "max_tokens: Field required"), BadRequest),
        (404, anthropic_error("not_found_error", "model: claude-nope"), BadRequest),
        (422, "unprocessable", BadRequest),
        (302, "", MalformedResponse),
    ],
)
def test_status_and_error_type_map_into_taxonomy(
    status: int, body: Any, expected: type[ProviderError]
) -> None:
    error = failure(reply(status, body))
    assert type(error) is expected
    assert error.status == status
    assert error.deployment == "claude"
    assert str(status) in str(error)


def test_error_message_carries_the_vendor_detail() -> None:
    error = failure(reply(400, anthropic_error("invalid_request_error", TOO_LONG)))
    assert TOO_LONG in str(error)


@pytest.mark.parametrize(("headers", "expected"), [({"retry-after": "7"}, 7.0), ({}, None)])
def test_429_carries_retry_after(headers: dict[str, str], expected: float | None) -> None:
    error = failure(reply(429, anthropic_error("rate_limit_error"), headers))
    assert isinstance(error, RateLimited)
    assert error.retry_after == expected
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.retry_after, copy.status) == (RateLimited, expected, 429)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), ConnectFailed),
        (httpx.ReadError("connection reset by peer"), ConnectFailed),
        (httpx.RemoteProtocolError("server disconnected"), ConnectFailed),
        (httpx.ConnectTimeout("timed out"), ProviderTimeout),
        (httpx.ReadTimeout("timed out"), ProviderTimeout),
        (httpx.DecodingError("bad gzip"), MalformedResponse),
        (httpx.UnsupportedProtocol("ftp"), BadRequest),
    ],
)
def test_transport_exception_maps_into_taxonomy(
    exc: Exception, expected: type[ProviderError]
) -> None:
    error = failure(raising(exc))
    assert type(error) is expected
    assert error.__cause__ is None  # the httpx exception (and its request headers) is dropped


def test_overall_deadline_is_a_timeout() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json=message())

    error = failure(slow, deployment=DEPLOYMENT.model_copy(update={"timeout_s": 0.05}))
    assert isinstance(error, ProviderTimeout)


def test_unset_key_variable_is_an_auth_error_without_a_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(KEY_ENV)
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json=message())

    error = failure(handler)
    assert isinstance(error, AuthError) and KEY_ENV in str(error)
    assert calls == []


# --- keys never leak -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", [KEY, "plainsecretvalue42"])  # the second has no sk- shape
def test_key_is_in_no_error_log_record_or_response(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, key: str
) -> None:
    monkeypatch.setenv(KEY_ENV, key)
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    echo = anthropic_error("authentication_error", f"invalid key {key} (also x-api-key: {key})")

    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json=message())

    failing: list[tuple[Handler, Deployment]] = [
        (reply(401, echo), DEPLOYMENT),
        (reply(500, f"upstream echoed {key}"), DEPLOYMENT),
        (raising(httpx.ConnectError(f"failed for {key}")), DEPLOYMENT),
        (hang, DEPLOYMENT.model_copy(update={"timeout_s": 0.05})),
        (reply(200, f'{{"content": [{{"type": "text", "text": "{key}"'), DEPLOYMENT),
    ]
    errors = [failure(handler, deployment=deployment) for handler, deployment in failing]
    response = call(reply(200, message()))

    assert [type(e) for e in errors] == [
        AuthError,
        ServerError,
        ConnectFailed,
        ProviderTimeout,
        MalformedResponse,
    ]
    for error in errors:
        for shown in (
            str(error),
            repr(error),
            str(error.args),
            repr(pickle.loads(pickle.dumps(error))),
        ):
            assert key not in shown
    assert key not in response.model_dump_json()
    assert any(r.name == "httpx" for r in caplog.records)  # httpx did log the requests...
    for record in caplog.records:  # ...and nothing logged the key
        assert key not in record.getMessage()
        assert key not in str(record.args)
    assert key not in caplog.text


def test_provider_repr_has_no_key() -> None:
    client = httpx.AsyncClient()
    provider = AnthropicProvider(DEPLOYMENT, client)
    assert KEY not in repr(provider) and KEY not in repr(vars(provider))
    asyncio.run(client.aclose())


def test_build_provider_picks_the_anthropic_adapter() -> None:
    client = httpx.AsyncClient()
    assert isinstance(build_provider(DEPLOYMENT, client), AnthropicProvider)
    asyncio.run(client.aclose())


# --- against the sim (no sockets) ----------------------------------------------------------------

SIM = DEPLOYMENT.model_copy(update={"base_url": "http://sim/v1", "model": "sim-large"})


def through_sim(
    requests: list[ChatRequest], deployment: Deployment = SIM, sim: SimProvider | None = None
) -> list[ChatResponse | ProviderError]:
    provider = sim or SimProvider(SimConfig(latency_scale=0))

    async def go() -> list[ChatResponse | ProviderError]:
        out: list[ChatResponse | ProviderError] = []
        async with httpx.AsyncClient(transport=provider.mock_transport()) as client:
            adapter = AnthropicProvider(deployment, client)
            for request in requests:
                try:
                    out.append(await adapter.chat(request))
                except ProviderError as exc:
                    out.append(exc)
        return out

    return asyncio.run(go())


def ask(prompt: str, **update: Any) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage(role="user", content=prompt)], **update)


def test_sim_answers_with_usage_stop_sequences_and_the_same_ledger_key() -> None:
    sim = SimProvider(SimConfig(latency_scale=0))
    plain, stopped, short = through_sim(
        [
            ChatRequest(messages=[ChatMessage(role="system", content="Be brief."), USER]),
            ask("Hello", stop=["answer"]),
            ask("Hello", max_tokens=3),
        ],
        sim=sim,
    )
    assert isinstance(plain, ChatResponse) and plain.text.startswith("[sim-large] ")
    assert plain.tokens_in == (len("Be brief.") + len(USER.content) + 3) // 4
    assert plain.tokens_out > 0 and plain.finish_reason == "stop"
    assert plain.response_id is not None and plain.response_id.startswith("msg_")
    assert isinstance(stopped, ChatResponse) and stopped.text == "[sim-large] Simulated"
    assert stopped.finish_reason == "stop"
    assert isinstance(short, ChatResponse) and short.finish_reason == "length"
    assert short.tokens_out == 3
    assert sim.ledger.count(prompt_key(USER.content)) == 1


def test_sim_tool_call_round_trip() -> None:
    first = ask(f"What is the weather in Pune? {tool_marker('get_weather')}", tools=[WEATHER])
    (called,) = through_sim([first])
    assert isinstance(called, ChatResponse)
    assert called.finish_reason == "tool_calls" and called.text == ""
    (tool_call,) = called.tool_calls
    assert tool_call.name == "get_weather" and tool_call.id.startswith("toolu_")
    assert json.loads(tool_call.arguments) == {"query": "What is the weather in Pune"}

    asked = ChatMessage(role="assistant", tool_calls=[tool_call])
    result = ChatMessage(role="tool", tool_call_id=tool_call.id, content='{"temp_c": 31}')
    conversation = [*first.messages, asked, result]
    (answered,) = through_sim([first.model_copy(update={"messages": conversation})])
    assert isinstance(answered, ChatResponse)
    assert answered.finish_reason == "stop" and answered.tool_calls == []
    assert answered.text.startswith("[sim-large] ")


def test_sim_json_mode_follows_the_system_instruction() -> None:
    (response,) = through_sim([ask("List three colours.", response_format="json")])
    assert isinstance(response, ChatResponse)
    assert json.loads(response.text)["simulated"] is True


@pytest.mark.parametrize(
    ("fault", "expected", "status"),
    [
        ("429", RateLimited, 429),
        ("500", ServerError, 500),
        ("503", ServerError, 529),  # an outage is Anthropic's 529 overloaded_error
        ("context", ContextTooLong, 400),
        ("filtered", ContentFiltered, 200),
        ("malformed", MalformedResponse, 200),
    ],
)
def test_sim_faults_map_into_taxonomy(
    fault: str, expected: type[ProviderError], status: int
) -> None:
    (error,) = through_sim([ask(f"Hello {error_marker(fault)}")])
    assert type(error) is expected and error.status == status
    if isinstance(error, RateLimited):
        assert error.retry_after == 1.0


def test_sim_timeout_is_a_provider_timeout() -> None:
    quick = SIM.model_copy(update={"timeout_s": 0.1})
    (error,) = through_sim([ask(f"Hello {error_marker('timeout')}")], deployment=quick)
    assert isinstance(error, ProviderTimeout)


def test_sim_window_and_unknown_model() -> None:
    small = SIM.model_copy(update={"model": "sim-small"})
    (too_long,) = through_sim([ask("word " * 20_000)], deployment=small)
    assert isinstance(too_long, ContextTooLong)
    (unknown,) = through_sim([REQUEST], deployment=SIM.model_copy(update={"model": "nope"}))
    assert type(unknown) is BadRequest and unknown.status == 404


def test_an_assistant_tool_call_becomes_a_tool_use_block_before_its_result() -> None:
    call = ToolCall(id="toolu_01", name="get_weather", arguments='{"city": "Pune"}')
    request = ChatRequest(
        messages=[
            USER,
            ChatMessage(role="assistant", content="Checking.", tool_calls=[call]),
            ChatMessage(role="tool", tool_call_id="toolu_01", content='{"temp": 21}'),
        ]
    )
    assert payload(request)["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                text("Checking."),
                {
                    "type": "tool_use",
                    "id": "toolu_01",
                    "name": "get_weather",
                    "input": {"city": "Pune"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": '{"temp": 21}'}
            ],
        },
    ]


def test_tool_call_arguments_that_are_not_an_object_are_a_bad_request() -> None:
    call = ToolCall(id="toolu_01", name="get_weather", arguments="[1, 2]")
    request = ChatRequest(messages=[USER, ChatMessage(role="assistant", tool_calls=[call])])
    with pytest.raises(BadRequest, match="not a JSON object"):
        payload(request)
