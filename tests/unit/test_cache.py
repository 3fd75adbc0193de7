"""Response cache: key normalisation, hit/miss, TTLs, the stale copy, what is never stored, opt-out.

Behaviour tests run over the in-memory twin and over Redis (fakeredis).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import fakeredis
import pytest
from prometheus_client import REGISTRY

from parjanya import keys
from parjanya.config import CacheConfig, Deployment
from parjanya.providers.base import ChatRequest, ChatResponse, ServerError
from parjanya.resilience.cache import (
    CacheMiddleware,
    CacheStore,
    MemoryCacheStore,
    RedisCacheStore,
    bypass_cache,
    cache_bypassed,
    cache_keys,
    cacheable,
)
from parjanya.schema import ChatMessage, ToolCall

CONFIG = CacheConfig(ttl_s=60, stale_ttl_s=600)


def deployment(name: str, model: str | None = None) -> Deployment:
    return Deployment(
        name=name,
        base_url=f"http://{name}.test/v1",
        model=model or f"{name}-model",
        price_in_per_mtok=1.0,
        price_out_per_mtok=4.0,
        context_window=8_000,
    )


def request(content: str = "What is 2 + 2?", **extra: Any) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage(role="user", content=content)], **extra)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Provider:
    """call_next that answers with a given response and counts its calls."""

    def __init__(self, **fields: Any) -> None:
        self.calls = 0
        self.fields = {"text": "4", "finish_reason": "stop", "tokens_in": 12, "tokens_out": 3}
        self.fields.update(fields)

    async def __call__(self, dep: Deployment, req: ChatRequest) -> ChatResponse:
        self.calls += 1
        return ChatResponse(model=dep.model, deployment=dep.name, **self.fields)


def hits(kind: str) -> float:
    return REGISTRY.get_sample_value("parjanya_cache_hits_total", {"kind": kind}) or 0.0


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> Callable[[], CacheStore]:
    if request.param == "memory":
        return MemoryCacheStore
    return lambda: RedisCacheStore(fakeredis.FakeAsyncRedis())


# --- keys ----------------------------------------------------------------------------------


def test_key_ignores_dict_key_order() -> None:
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"a": 1, "b": 2}}}]
    first = ChatRequest.model_validate(
        {
            "messages": [{"role": "user", "content": "hi", "name": "ann"}],
            "max_tokens": 50,
            "temperature": 0.0,
            "tools": tools,
            "tool_choice": {"type": "function", "function": {"name": "add"}},
        }
    )
    second = ChatRequest.model_validate(
        {
            "tool_choice": {"function": {"name": "add"}, "type": "function"},
            "tools": [
                {"function": {"parameters": {"b": 2, "a": 1}, "name": "add"}, "type": "function"}
            ],
            "temperature": 0.0,
            "max_tokens": 50,
            "messages": [{"name": "ann", "content": "hi", "role": "user"}],
        }
    )
    assert cache_keys("m", first) == cache_keys("m", second)


def test_model_is_in_the_fresh_key_only() -> None:
    one, other = cache_keys("small", request()), cache_keys("large", request())
    assert one.fresh != other.fresh
    assert one.stale == other.stale
    assert one.fresh.startswith(keys.cache_fresh(""))
    assert one.stale.startswith(keys.cache_stale(""))


@pytest.mark.parametrize(
    "changed",
    [
        request("What is 2 + 2? "),  # content is kept exactly, whitespace included
        request("what is 2 + 2?"),
        ChatRequest(messages=[ChatMessage(role="system", content="What is 2 + 2?")]),
        ChatRequest(messages=[ChatMessage(role="user", content="What is 2 + 2?", name="bo")]),
        request(max_tokens=10),
        request(temperature=0.7),
        request(response_format="json"),
        request(stop=["\n"]),
        request(tools=[{"type": "function", "function": {"name": "f"}}]),
        request(tool_choice="none"),
    ],
)
def test_everything_that_shapes_the_answer_is_in_the_key(changed: ChatRequest) -> None:
    assert cache_keys("m", changed).fresh != cache_keys("m", request()).fresh
    assert cache_keys("m", changed).stale != cache_keys("m", request()).stale


def test_logprobs_flag_is_not_in_the_key() -> None:
    assert cache_keys("m", request(logprobs=False)) == cache_keys("m", request(logprobs=True))


# --- hit and miss --------------------------------------------------------------------------


def test_miss_calls_then_hit_answers_from_cache(make_store: Callable[[], CacheStore]) -> None:
    async def scenario() -> None:
        cache, provider, d = CacheMiddleware(make_store(), CONFIG), Provider(), deployment("d1")
        before = hits("fresh")

        first = await cache(d, request(), provider)
        second = await cache(d, request(), provider)

        assert provider.calls == 1
        assert first.cached is False
        assert second.cached is True
        assert (second.text, second.tokens_in, second.tokens_out) == ("4", 12, 3)  # kept
        assert second.model_copy(update={"cached": False}) == first
        assert hits("fresh") == before + 1

    asyncio.run(scenario())


def test_another_model_does_not_get_the_fresh_answer(make_store: Callable[[], CacheStore]) -> None:
    async def scenario() -> None:
        cache, provider = CacheMiddleware(make_store(), CONFIG), Provider()
        await cache(deployment("small"), request(), provider)
        await cache(deployment("large"), request(), provider)
        assert provider.calls == 2
        # A second deployment serving the same model shares its entries
        assert (
            await cache(deployment("small-eu", model="small-model"), request(), provider)
        ).cached

    asyncio.run(scenario())


def test_fresh_entry_expires_after_ttl() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        cache = CacheMiddleware(MemoryCacheStore(clock=clock), CONFIG)
        provider, d = Provider(), deployment("d1")
        await cache(d, request(), provider)
        clock.now = 59.9
        assert (await cache(d, request(), provider)).cached
        clock.now = 60.0
        assert not (await cache(d, request(), provider)).cached
        assert provider.calls == 2

    asyncio.run(scenario())


def test_redis_entries_carry_their_ttls() -> None:
    async def scenario() -> None:
        client = fakeredis.FakeAsyncRedis()
        cache = CacheMiddleware(RedisCacheStore(client), CONFIG)
        await cache(deployment("d1"), request(), Provider())
        where = cache_keys("d1-model", request())
        assert 0 < await client.ttl(where.fresh) <= 60
        assert 60 < await client.ttl(where.stale) <= 600

    asyncio.run(scenario())


# --- what is stored ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "stored"),
    [
        ({}, True),
        ({"finish_reason": None}, True),
        ({"finish_reason": "length"}, False),  # cut short: calling again may do better
        ({"finish_reason": "max_tokens"}, False),
        ({"finish_reason": "content_filter"}, False),
        ({"text": "  \n"}, False),
        ({"text": "", "tool_calls": [ToolCall(id="1", name="f", arguments="{}")]}, True),
        ({"cached": True}, False),
    ],
)
def test_only_complete_answers_are_stored(fields: dict[str, Any], stored: bool) -> None:
    async def scenario() -> None:
        cache, provider = CacheMiddleware(MemoryCacheStore(), CONFIG), Provider(**fields)
        await cache(deployment("d1"), request(), provider)
        await cache(deployment("d1"), request(), provider)
        assert provider.calls == (1 if stored else 2)
        assert (await cache.stale_lookup(request()) is not None) is stored

    asyncio.run(scenario())
    assert cacheable(ChatResponse(model="m", deployment="d", **{"text": "4", **fields})) is stored


def test_errors_pass_through_and_are_not_stored(make_store: Callable[[], CacheStore]) -> None:
    async def scenario() -> None:
        cache = CacheMiddleware(make_store(), CONFIG)

        async def failing(dep: Deployment, req: ChatRequest) -> ChatResponse:
            raise ServerError("boom", deployment=dep.name, status=500)

        with pytest.raises(ServerError):
            await cache(deployment("d1"), request(), failing)
        assert await cache.stale_lookup(request()) is None
        provider = Provider()
        await cache(deployment("d1"), request(), provider)
        assert provider.calls == 1

    asyncio.run(scenario())


# --- stale ---------------------------------------------------------------------------------


def test_stale_lookup_serves_any_models_last_answer(make_store: Callable[[], CacheStore]) -> None:
    async def scenario() -> None:
        cache = CacheMiddleware(make_store(), CONFIG)
        assert await cache.stale_lookup(request()) is None
        await cache(deployment("small"), request(), Provider(text="from small"))
        before = hits("stale")

        stale = await cache.stale_lookup(request())

        assert stale is not None
        assert (stale.text, stale.deployment, stale.cached) == ("from small", "small", True)
        assert hits("stale") == before + 1
        assert await cache.stale_lookup(request("another question")) is None

    asyncio.run(scenario())


def test_stale_copy_outlives_the_fresh_one() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        cache = CacheMiddleware(MemoryCacheStore(clock=clock), CONFIG)
        provider = Provider()
        await cache(deployment("d1"), request(), provider)
        clock.now = 300.0
        assert not (await cache(deployment("d1"), request(), Provider())).cached  # fresh gone
        clock.now = 300.0 + 599.0
        assert await cache.stale_lookup(request()) is not None  # rewritten at 300
        clock.now = 300.0 + 600.0
        assert await cache.stale_lookup(request()) is None

    asyncio.run(scenario())


def test_no_stale_copy_when_stale_ttl_is_zero() -> None:
    async def scenario() -> None:
        client = fakeredis.FakeAsyncRedis()
        cache = CacheMiddleware(RedisCacheStore(client), CacheConfig(ttl_s=60, stale_ttl_s=0))
        await cache(deployment("d1"), request(), Provider())
        assert await client.exists(cache_keys("d1-model", request()).stale) == 0
        assert await cache.stale_lookup(request()) is None

    asyncio.run(scenario())


# --- opting out ----------------------------------------------------------------------------


def test_disabled_in_config_neither_reads_nor_writes() -> None:
    async def scenario() -> None:
        store = MemoryCacheStore()
        provider = Provider()
        await CacheMiddleware(store, CONFIG)(deployment("d1"), request(), provider)
        off = CacheMiddleware(store, CacheConfig(enabled=False))
        assert not off.enabled_for(request())
        assert not (await off(deployment("d1"), request(), provider)).cached
        assert await off.stale_lookup(request()) is None

    asyncio.run(scenario())


def test_bypass_cache_opts_one_task_out(make_store: Callable[[], CacheStore]) -> None:
    async def scenario() -> None:
        cache, provider = CacheMiddleware(make_store(), CONFIG), Provider()
        with bypass_cache():
            assert cache_bypassed() and not cache.enabled_for(request())
            await cache(deployment("d1"), request(), provider)  # not written
        assert not cache_bypassed()
        assert await cache.stale_lookup(request()) is None
        await cache(deployment("d1"), request(), provider)  # written
        with bypass_cache():
            assert not (await cache(deployment("d1"), request(), provider)).cached  # not read
            assert await cache.stale_lookup(request()) is None
        assert provider.calls == 3

    asyncio.run(scenario())


def test_bypass_is_per_task_among_concurrent_tasks() -> None:
    async def scenario() -> tuple[bool, bool]:
        cache, provider = CacheMiddleware(MemoryCacheStore(), CONFIG), Provider()
        await cache(deployment("d1"), request(), provider)
        gate = asyncio.Event()

        async def task(opt_out: bool) -> bool:
            with bypass_cache(opt_out):
                await gate.wait()  # both tasks are inside their blocks at once
                return (await cache(deployment("d1"), request(), provider)).cached

        running = asyncio.gather(task(True), task(False))
        await asyncio.sleep(0)
        gate.set()
        opted_out, opted_in = await running
        return opted_out, opted_in

    assert asyncio.run(scenario()) == (False, True)


# --- failures of the cache itself ----------------------------------------------------------


def test_a_broken_store_is_a_miss_not_a_failure() -> None:
    class Broken:
        async def get(self, key: str) -> str | None:
            raise ConnectionError("redis down")

        async def put_many(self, entries: Any) -> None:
            raise ConnectionError("redis down")

    async def scenario() -> None:
        cache, provider = CacheMiddleware(Broken(), CONFIG), Provider()
        assert (await cache(deployment("d1"), request(), provider)).text == "4"
        assert await cache.stale_lookup(request()) is None

    asyncio.run(scenario())


def test_an_unreadable_entry_is_a_miss() -> None:
    async def scenario() -> None:
        store = MemoryCacheStore()
        await store.put_many(
            [(cache_keys("d1-model", request()).fresh, '{"not": "a response"}', 60)]
        )
        provider = Provider()
        assert not (
            await CacheMiddleware(store, CONFIG)(deployment("d1"), request(), provider)
        ).cached
        assert provider.calls == 1

    asyncio.run(scenario())
