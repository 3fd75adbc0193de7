"""A provider that stalls, trickles, floods and lies, over a real socket, through both posters.

Given a deployment capped at 1 MiB per response body (`Deployment.max_response_bytes`), when its
server floods, bombs, stalls, trickles or lies, then the call ends in the taxonomy's error within
the deployment's deadline, having read no more than the cap: the server sees the client hang up
on a body that would never end.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import Iterator

import httpx
import pytest

from parjanya.config import Deployment, RetryConfig
from parjanya.providers import (
    ChatRequest,
    ChatResponse,
    ConnectFailed,
    MalformedResponse,
    ProviderError,
    ProviderTimeout,
    build_provider,
)
from parjanya.providers.transport import AiohttpPoster, JsonPoster
from parjanya.resilience import TierCall, call_tier, set_testing
from parjanya.schema import ChatMessage
from tests.integration.hostile_provider import HostileServer

pytestmark = pytest.mark.integration

CAP = 1024 * 1024
REQUEST = ChatRequest(messages=[ChatMessage(role="user", content="hello")], max_tokens=8)


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server


@pytest.fixture(params=["httpx", "aiohttp"])
def via(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _deployment(server: HostileServer, mode: str, timeout_s: float = 5.0) -> Deployment:
    return Deployment(
        name=f"hostile-{mode}",
        base_url=server.base_url(mode),
        model="hostile",
        price_in_per_mtok=1.0,
        price_out_per_mtok=1.0,
        context_window=8_000,
        timeout_s=timeout_s,
        max_response_bytes=CAP,
    )


def call(
    server: HostileServer, mode: str, via: str, timeout_s: float = 5.0
) -> tuple[object, float, int]:
    """(response or ProviderError, seconds taken, peak bytes Python allocated during the call)."""

    async def run() -> ChatResponse | ProviderError:
        client: JsonPoster | httpx.AsyncClient = (
            httpx.AsyncClient() if via == "httpx" else AiohttpPoster()
        )
        try:
            return await build_provider(_deployment(server, mode, timeout_s), client).chat(REQUEST)
        except ProviderError as exc:
            return exc
        finally:
            await client.aclose()

    tracemalloc.start()
    started = time.monotonic()
    try:
        outcome = asyncio.run(run())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return outcome, time.monotonic() - started, peak


def test_a_well_behaved_answer_under_the_cap_is_read(hostile: HostileServer, via: str) -> None:
    outcome, _, _ = call(hostile, "ok", via)
    assert isinstance(outcome, ChatResponse) and outcome.text == "fine"


@pytest.mark.parametrize("mode", ["flood", "flood-declared"])
def test_a_flood_is_a_malformed_response_read_no_further(
    hostile: HostileServer, via: str, mode: str
) -> None:
    outcome, took, peak = call(hostile, mode, via)
    assert isinstance(outcome, MalformedResponse), outcome
    assert "read no further" in str(outcome)
    served = hostile.last(mode)
    assert served.done.is_set() and served.hung_up  # the client closed on an endless body
    assert served.sent < 64 * CAP  # what the socket buffers held, not the 1 GiB on offer
    assert peak < 16 * CAP
    assert took < 5.0


def test_a_declared_oversize_body_is_refused_before_reading_it(
    hostile: HostileServer, via: str
) -> None:
    outcome, _, _ = call(hostile, "flood-declared", via)
    assert isinstance(outcome, MalformedResponse) and "Content-Length 1073741824" in str(outcome)


def test_a_compressed_bomb_counts_at_its_decoded_size(hostile: HostileServer, via: str) -> None:
    outcome, _, peak = call(hostile, "bomb", via)
    assert isinstance(outcome, MalformedResponse) and "read no further" in str(outcome)
    assert peak < 16 * CAP  # 16 MiB of zeros were on offer, decoded


@pytest.mark.parametrize("mode", ["stall", "trickle"])
def test_a_stall_or_a_trickle_ends_at_the_deadline(
    hostile: HostileServer, via: str, mode: str
) -> None:
    outcome, took, _ = call(hostile, mode, via, timeout_s=0.5)
    assert isinstance(outcome, ProviderTimeout), outcome
    assert took < 3.0
    assert hostile.last(mode).hung_up


def test_a_flood_is_retried_once_then_fallen_back_from_each_read_capped(
    hostile: HostileServer,
) -> None:
    """The matrix's malformed_response row: one retry, then the next deployment answers.

    Before the cap this was the 3.1 GB pool: the flood read whole, then read whole again.
    """
    flood, fine = _deployment(hostile, "flood"), _deployment(hostile, "ok")
    before = len(hostile.served.get("flood", []))

    async def run() -> TierCall:
        poster = AiohttpPoster()
        try:
            with set_testing():
                return await call_tier(
                    [flood, fine],
                    REQUEST,
                    providers=lambda d: build_provider(d, poster),
                    retry=RetryConfig(),
                    hop=1,
                    tier="low",
                )
        finally:
            await poster.aclose()

    tracemalloc.start()
    try:
        result = asyncio.run(run())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.ok and result.deployment == fine
    assert [a.error_type for a in result.attempts] == ["malformed_response"] * 2 + [None]
    floods = hostile.served["flood"][before:]
    assert len(floods) == 2 and all(s.done.wait(10) and s.hung_up for s in floods)
    assert peak < 16 * CAP


@pytest.mark.parametrize("mode", ["lie-short", "lie-json", "lie-gzip"])
def test_a_lying_server_is_a_classified_error(hostile: HostileServer, via: str, mode: str) -> None:
    outcome, _, _ = call(hostile, mode, via)
    assert isinstance(outcome, MalformedResponse | ConnectFailed), outcome
