"""The judge checker, built from config, grading through the sim over a real loopback socket.

The sim answers a grading prompt in prose, never with a rating, so over the wire the judge shows
what matters most in production: its call really goes out (both vendors' APIs, both posters), and
whatever comes back (prose, an error status, nothing in time) becomes the default checker's
value with a signal saying why, never an exception. Parsing a rating is unit-tested.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from parjanya.checkers import build_checker
from parjanya.confidence import Confidence, DefaultConfidence
from parjanya.config import ParjanyaConfig
from parjanya.judge import JudgeConfidence
from parjanya.providers import ChatRequest, ChatResponse
from parjanya.providers.transport import AiohttpPoster, JsonPoster
from parjanya.schema import ChatMessage
from parjanya.sim import SimConfig, SimServer, error_marker, latency_marker

pytestmark = pytest.mark.integration

ANSWER = ChatResponse(text="17 * 3 = 51.", finish_reason="stop", model="m", deployment="d")


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with SimServer(SimConfig(latency_scale=0, seed=7)) as sim:
        yield sim


@pytest.fixture(autouse=True)
def _fresh(server: SimServer) -> Iterator[None]:
    server.provider.reset()
    yield
    server.provider.reset()


def judged_config(server: SimServer, kind: str) -> ParjanyaConfig:
    raw = ParjanyaConfig().model_dump()
    for tier in raw["tiers"].values():
        for deployment in tier["deployments"]:
            deployment.update(base_url=server.api_base, provider=kind)
    raw["confidence"] = {"checker": "judge", "judge_deployment": "sim-small", "judge_timeout_s": 1}
    return ParjanyaConfig.model_validate(raw)


def grade(config: ParjanyaConfig, prompt: str, via: str) -> Confidence:
    async def go() -> Confidence:
        client: JsonPoster | httpx.AsyncClient
        client = httpx.AsyncClient() if via == "httpx" else AiohttpPoster()
        try:
            checker = build_checker(config, client)
            assert isinstance(checker, JudgeConfidence)
            asked = ChatRequest(messages=[ChatMessage(role="user", content=prompt)])
            return await checker.acheck(asked, ANSWER)
        finally:
            await client.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("via", ["httpx", "aiohttp"])
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_the_judge_calls_its_deployment_and_falls_back_on_prose(
    server: SimServer, kind: str, via: str
) -> None:
    verdict = grade(judged_config(server, kind), "What is 17 * 3?", via)
    default = DefaultConfidence().check(
        ChatRequest(messages=[ChatMessage(role="user", content="What is 17 * 3?")]), ANSWER
    )
    assert verdict.value == default.value
    assert verdict.signals[0].startswith("judge sim-small: no rating in 1..10 in the reply")
    stats = server.provider.ledger.stats()
    assert stats["by_model"] == {"sim-small": 1} and stats["by_status"] == {"200": 1}


@pytest.mark.parametrize(
    ("marker", "why"),
    [(error_marker(429), "rate_limited"), (error_marker(503), "server_error")],
)
def test_an_error_status_over_the_wire_falls_back(server: SimServer, marker: str, why: str) -> None:
    verdict = grade(judged_config(server, "openai"), f"What is 17 * 3? {marker}", "aiohttp")
    assert verdict.signals[0].startswith(f"judge sim-small: call failed ({why}: ")
    assert 0 < verdict.value <= 1


def test_a_judge_slower_than_its_timeout_falls_back_in_time(server: SimServer) -> None:
    config = judged_config(server, "openai")
    verdict, elapsed = asyncio.run(_timed(config, f"What is 17 * 3? {latency_marker(3)}"))
    assert verdict.signals[0].startswith("judge sim-small: call failed (timeout)")
    assert elapsed < 2.5  # judge_timeout_s is 1; the sim would have answered after 3


async def _timed(config: ParjanyaConfig, prompt: str) -> tuple[Confidence, float]:
    loop = asyncio.get_running_loop()
    client = AiohttpPoster()
    try:
        checker = build_checker(config, client)
        asked = ChatRequest(messages=[ChatMessage(role="user", content=prompt)])
        start = loop.time()
        verdict = await checker.acheck(asked, ANSWER)
        return verdict, loop.time() - start
    finally:
        await client.aclose()
