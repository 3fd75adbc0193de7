"""The response cap without a socket: MockTransport replies through the httpx poster."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable

import httpx
import pytest

from parjanya.config import Deployment
from parjanya.providers import ChatRequest, MalformedResponse, build_provider
from parjanya.providers.transport import ResponseTooLarge, read_capped
from parjanya.schema import ChatMessage

REQUEST = ChatRequest(messages=[ChatMessage(role="user", content="hi")])


def _deployment(cap: int) -> Deployment:
    return Deployment(
        name="capped",
        base_url="http://model.test/v1",
        model="m",
        price_in_per_mtok=0,
        price_out_per_mtok=0,
        context_window=1000,
        max_response_bytes=cap,
    )


def _chat(cap: int, response: Callable[[], httpx.Response]) -> object:
    async def run() -> object:
        transport = httpx.MockTransport(lambda _: response())  # a fresh reply for the retry
        async with httpx.AsyncClient(transport=transport) as client:
            try:
                return await build_provider(_deployment(cap), client).chat(REQUEST)
            except MalformedResponse as exc:
                return exc

    return asyncio.run(run())


def test_read_capped_stops_at_the_first_chunk_past_the_cap() -> None:
    pulled: list[int] = []

    async def chunks():  # type: ignore[no-untyped-def]
        for n in range(100):
            pulled.append(n)
            yield b"x" * 10

    with pytest.raises(ResponseTooLarge, match="over 25 bytes"):
        asyncio.run(read_capped(chunks(), 25))
    assert pulled == [0, 1, 2]


@pytest.mark.parametrize(
    "response",
    [
        lambda: httpx.Response(200, content=b"{" + b" " * 5000 + b"}"),
        lambda: httpx.Response(
            200, content=gzip.compress(b" " * 5000), headers={"content-encoding": "gzip"}
        ),
        lambda: httpx.Response(500, content=b"e" * 5000),
    ],
    ids=["plain", "gzip", "error body"],
)
def test_a_body_over_the_deployment_cap_is_malformed(
    response: Callable[[], httpx.Response],
) -> None:
    outcome = _chat(1000, response)
    assert isinstance(outcome, MalformedResponse) and "over 1000 bytes" in str(outcome)


def test_the_default_cap_is_stated_in_config() -> None:
    assert Deployment.model_fields["max_response_bytes"].default == 8 * 1024 * 1024
