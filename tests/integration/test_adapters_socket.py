"""Both adapters against the sim over a real loopback socket, through both posters, no mocks.

The unit tests check each translation with MockTransport; here the same calls cross TCP, so the
connection pool, real headers and the HTTP libraries' DEBUG logging are in the path too. Every test
runs through httpx (what tests and tools use) and through aiohttp (what workers use).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from parjanya.config import Deployment
from parjanya.providers import (
    ChatRequest,
    ChatResponse,
    ConnectFailed,
    ProviderError,
    RateLimited,
    ServerError,
    build_provider,
)
from parjanya.providers.transport import AiohttpPoster, JsonPoster
from parjanya.schema import ChatMessage
from parjanya.sim import SimConfig, SimServer, error_marker, prompt_key, tool_marker

pytestmark = pytest.mark.integration

KEY_ENV = "PARJANYA_TEST_KEY"
KEY = "sk-test-SECRET123"
KINDS = ["openai", "anthropic"]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with SimServer(SimConfig(latency_scale=0, seed=11)) as sim:
        yield sim


@pytest.fixture(autouse=True)
def _fresh(server: SimServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(KEY_ENV, KEY)
    server.provider.reset()
    yield
    server.provider.reset()


def deployment(server: SimServer, kind: str, model: str = "sim-large") -> Deployment:
    return Deployment(
        name=f"{kind}-{model}",
        provider="anthropic" if kind == "anthropic" else "openai",
        base_url=server.api_base,
        model=model,
        api_key_env=KEY_ENV,
        price_in_per_mtok=1.0,
        price_out_per_mtok=2.0,
        context_window=200_000,
        timeout_s=5.0,
    )


@pytest.fixture(params=["httpx", "aiohttp"])
def via(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def chat(target: Deployment, request: ChatRequest, via: str) -> ChatResponse | ProviderError:
    async def go() -> ChatResponse | ProviderError:
        client: JsonPoster | httpx.AsyncClient
        client = httpx.AsyncClient() if via == "httpx" else AiohttpPoster()
        try:
            return await build_provider(target, client).chat(request)
        except ProviderError as exc:
            return exc
        finally:
            await client.aclose()

    return asyncio.run(go())


def ask(prompt: str, **update: Any) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage(role="user", content=prompt)], **update)


@pytest.mark.parametrize("kind", KINDS)
def test_answer_with_usage(server: SimServer, kind: str, via: str) -> None:
    prompt = f"Explain the deploy checklist ({kind})."
    response = chat(deployment(server, kind), ask(prompt, max_tokens=200), via)
    assert isinstance(response, ChatResponse)
    assert response.text.startswith("[sim-large] ") and response.finish_reason == "stop"
    assert response.tokens_in == (len(prompt) + 3) // 4 and response.tokens_out > 0
    assert (response.logprobs is None) == (kind == "anthropic")
    assert server.provider.ledger.count(prompt_key(prompt)) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_tool_call(server: SimServer, kind: str, via: str) -> None:
    request = ask(f"Weather in Pune? {tool_marker('get_weather')}", tools=[WEATHER])
    response = chat(deployment(server, kind), request, via)
    assert isinstance(response, ChatResponse) and response.finish_reason == "tool_calls"
    (call,) = response.tool_calls
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"query": "Weather in Pune"}


@pytest.mark.parametrize("kind", KINDS)
def test_rate_limit_carries_retry_after(server: SimServer, kind: str, via: str) -> None:
    server.provider.update_faults({"default": {"retry_after_s": 3}})
    error = chat(deployment(server, kind), ask(f"Hello {error_marker(429)}"), via)
    assert isinstance(error, RateLimited)
    assert (error.status, error.retry_after) == (429, 3.0)


@pytest.mark.parametrize(("kind", "status"), [("openai", 503), ("anthropic", 529)])
def test_outage_is_a_server_error(server: SimServer, kind: str, status: int, via: str) -> None:
    server.provider.update_faults({"models": {"sim-medium": {"outage": True}}})
    error = chat(deployment(server, kind, "sim-medium"), ask("Hello"), via)
    assert isinstance(error, ServerError) and error.status == status
    assert isinstance(chat(deployment(server, kind), ask("Hello"), via), ChatResponse)


@pytest.mark.parametrize("kind", KINDS)
def test_key_crosses_the_wire_but_no_log_line(
    server: SimServer, kind: str, via: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx INFO request lines and httpcore DEBUG traces
    target = deployment(server, kind)
    outcomes = [
        chat(target, ask("Hello"), via),
        chat(target, ask(f"Hello {error_marker(500)}"), via),
        chat(target, ask(f"Hello {error_marker('malformed')}"), via),
        chat(
            target.model_copy(update={"timeout_s": 0.2}), ask(f"Hi {error_marker('timeout')}"), via
        ),
    ]
    assert isinstance(outcomes[0], ChatResponse)
    assert [type(o).__name__ for o in outcomes[1:]] == [
        "ServerError",
        "MalformedResponse",
        "ProviderTimeout",
    ]
    if via == "httpx":
        assert {r.name.split(".")[0] for r in caplog.records} >= {"httpx", "httpcore"}
    for record in caplog.records:
        assert KEY not in record.getMessage() and KEY not in str(record.args)
    for outcome in outcomes:
        shown = outcome.model_dump_json() if isinstance(outcome, ChatResponse) else repr(outcome)
        assert KEY not in shown and KEY not in str(outcome)


@pytest.mark.parametrize("kind", KINDS)
def test_a_refused_connection_is_connect_failed(server: SimServer, kind: str, via: str) -> None:
    nowhere = deployment(server, kind).model_copy(update={"base_url": "http://127.0.0.1:9/v1"})
    error = chat(nowhere, ask("Hello"), via)
    assert isinstance(error, ConnectFailed), error
