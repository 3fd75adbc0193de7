"""Live deployment stats: in-flight leases, EWMA latency, the shared counter, and the middleware.

Every store test runs over the in-memory twin and over Redis (fakeredis, Lua through lupa).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import fakeredis
import pytest
from prometheus_client import REGISTRY

from parjanya import keys
from parjanya.config import Deployment
from parjanya.providers.base import (
    ChatRequest,
    ChatResponse,
    CircuitOpen,
    ServerError,
)
from parjanya.resilience.track import (
    MemoryTrackStore,
    RedisTrackStore,
    TrackingMiddleware,
    TrackStore,
    default_lease_s,
)
from parjanya.schema import ChatMessage

REQUEST = ChatRequest(messages=[ChatMessage(role="user", content="hi")], max_tokens=16)


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def deployment(name: str, **extra: Any) -> Deployment:
    return Deployment(
        name=name,
        base_url=f"http://{name}.test/v1",
        model=f"{name}-model",
        price_in_per_mtok=1.0,
        price_out_per_mtok=4.0,
        context_window=8_000,
        **extra,
    )


def response(name: str, **extra: Any) -> ChatResponse:
    return ChatResponse(text="answer", model=f"{name}-model", deployment=name, **extra)


#: Builds a store; two stores built by one factory share their data, like two workers.
StoreFactory = Callable[..., TrackStore]


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> StoreFactory:
    if request.param == "memory":
        shared: list[MemoryTrackStore] = []

        def memory(**kwargs: Any) -> TrackStore:
            # The in-memory twin is one process: "two workers" are the same object.
            if not shared:
                shared.append(MemoryTrackStore(**kwargs))
            return shared[0]

        return memory
    server = fakeredis.FakeServer()

    def redis(**kwargs: Any) -> TrackStore:
        return RedisTrackStore(fakeredis.FakeAsyncRedis(server=server), **kwargs)

    return redis


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- in flight -----------------------------------------------------------------------------


def test_inflight_counts_calls_until_they_end(make_store: StoreFactory) -> None:
    async def scenario() -> None:
        worker_a, worker_b = make_store(clock=FakeClock()), make_store(clock=FakeClock())
        await worker_a.begin("d1", "call-1", 60)
        await worker_b.begin("d1", "call-2", 60)
        await worker_b.begin("d2", "call-3", 60)
        assert await worker_a.inflight(["d1", "d2", "d3"]) == {"d1": 2, "d2": 1, "d3": 0}

        await worker_a.end("d1", "call-1")
        await worker_a.end("d1", "call-1")  # ending twice is harmless
        await worker_b.end("d9", "never-began")
        assert await worker_b.inflight(["d1", "d2"]) == {"d1": 1, "d2": 1}

    asyncio.run(scenario())


def test_a_dead_workers_calls_stop_counting_when_their_lease_runs_out(
    make_store: StoreFactory,
) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        store = make_store(clock=clock)
        # Given a worker that began two calls and was killed before ending them
        await store.begin("d1", "dead-1", 30)
        await store.begin("d1", "dead-2", 90)
        await store.begin("d1", "alive", 600)
        assert (await store.inflight(["d1"]))["d1"] == 3

        # When their leases run out, they no longer count; the live call still does
        clock.advance(30)
        assert (await store.inflight(["d1"]))["d1"] == 2
        clock.advance(61)
        assert (await store.inflight(["d1"]))["d1"] == 1

        # And the next begin prunes them for good
        await store.begin("d1", "next", 600)
        assert (await store.inflight(["d1"]))["d1"] == 2

    asyncio.run(scenario())


def test_redis_inflight_key_expires_with_its_longest_lease() -> None:
    async def scenario() -> None:
        client = fakeredis.FakeAsyncRedis()
        store = RedisTrackStore(client, clock=FakeClock())
        await store.begin("d1", "long", 120)
        await store.begin("d1", "short", 10)  # must not shorten the key's life
        pttl = await client.pttl(keys.track_inflight("d1"))
        assert 110_000 < pttl <= 120_000
        assert await client.zrange(keys.track_inflight("d1"), 0, -1) == [b"short", b"long"]

    asyncio.run(scenario())


# --- latency -------------------------------------------------------------------------------


def test_ewma_starts_at_the_first_sample_then_moves_by_alpha(make_store: StoreFactory) -> None:
    async def scenario() -> None:
        store = make_store(alpha=0.5, clock=FakeClock())
        assert await store.latency(["d1"]) == {"d1": None}
        assert await store.observe_latency("d1", 1.0) == 1.0
        assert await store.observe_latency("d1", 3.0) == 2.0  # 1 + 0.5 * (3 - 1)
        assert await store.observe_latency("d1", 4.0) == 3.0
        assert await store.latency(["d1", "d2"]) == {"d1": 3.0, "d2": None}

    asyncio.run(scenario())


def test_ewma_keeps_full_float_precision(make_store: StoreFactory) -> None:
    async def scenario() -> None:
        store = make_store(alpha=0.3, clock=FakeClock())
        expected = 0.123
        await store.observe_latency("d1", 0.123)
        for x in (0.456, 2.5, 0.001):
            expected += 0.3 * (x - expected)
            assert await store.observe_latency("d1", x) == pytest.approx(expected, rel=1e-12)
        assert (await store.latency(["d1"]))["d1"] == pytest.approx(expected, rel=1e-12)

    asyncio.run(scenario())


def test_concurrent_samples_are_never_lost(make_store: StoreFactory) -> None:
    async def scenario() -> None:
        workers = [make_store(alpha=1.0, clock=FakeClock()) for _ in range(2)]
        await asyncio.gather(*(w.observe_latency("d1", 2.0) for w in workers for _ in range(20)))
        assert (await workers[0].latency(["d1"]))["d1"] == 2.0

    asyncio.run(scenario())


def test_memory_latency_is_forgotten_after_its_ttl() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        store = MemoryTrackStore(latency_ttl_s=100, clock=clock)
        await store.observe_latency("d1", 1.0)
        clock.advance(99)
        assert (await store.latency(["d1"]))["d1"] == 1.0
        clock.advance(2)
        assert (await store.latency(["d1"]))["d1"] is None
        assert await store.observe_latency("d1", 5.0) == 5.0  # starts again from the sample

    asyncio.run(scenario())


def test_redis_latency_hash_has_ttl_and_sample_count() -> None:
    async def scenario() -> None:
        client = fakeredis.FakeAsyncRedis()
        store = RedisTrackStore(client, latency_ttl_s=100)
        await store.observe_latency("d1", 1.0)
        await store.observe_latency("d1", 1.0)
        assert 0 < await client.ttl(keys.track_latency("d1")) <= 100
        assert await client.hget(keys.track_latency("d1"), "samples") == b"2"

    asyncio.run(scenario())


def test_alpha_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="alpha"):
        MemoryTrackStore(alpha=0)
    with pytest.raises(ValueError, match="alpha"):
        RedisTrackStore(fakeredis.FakeAsyncRedis(), alpha=1.5)


# --- the shared counter --------------------------------------------------------------------


def test_rotation_counter_is_shared_and_per_group(make_store: StoreFactory) -> None:
    async def scenario() -> None:
        a, b = make_store(), make_store()
        assert [await a.rotate("g"), await b.rotate("g"), await a.rotate("g")] == [1, 2, 3]
        assert await b.rotate("other") == 1

    asyncio.run(scenario())


# --- the middleware ------------------------------------------------------------------------


def test_middleware_counts_the_call_in_flight_and_samples_latency(
    make_store: StoreFactory,
) -> None:
    async def scenario() -> None:
        store = make_store(alpha=0.5)
        timer = FakeClock(0.0)
        track = TrackingMiddleware(store, tier="mid", clock=timer)
        d = deployment("track-ok")
        seen: dict[str, float] = {}

        async def call_next(dep: Deployment, req: ChatRequest) -> ChatResponse:
            seen["inflight"] = (await store.inflight([dep.name]))[dep.name]
            seen["gauge"] = sample("parjanya_inflight_calls", tier="mid")
            timer.advance(0.75)
            return response(dep.name)

        calls_before = sample("parjanya_provider_calls_total", deployment="track-ok", outcome="ok")
        gauge_before = sample("parjanya_inflight_calls", tier="mid")
        result = await track(d, REQUEST, call_next)

        assert result.text == "answer"
        assert seen == {"inflight": 1, "gauge": gauge_before + 1}
        assert (await store.inflight([d.name]))[d.name] == 0
        assert sample("parjanya_inflight_calls", tier="mid") == gauge_before
        assert (await store.latency([d.name]))[d.name] == 0.75
        assert (
            sample("parjanya_provider_calls_total", deployment="track-ok", outcome="ok")
            == calls_before + 1
        )
        assert sample("parjanya_provider_latency_seconds_count", deployment="track-ok") >= 1

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("error", "outcome", "error_type"),
    [
        (ServerError("boom", deployment="x", status=503), "error", "server_error"),
        (CircuitOpen("open", deployment="x"), "refused", "circuit_open"),
        (RuntimeError("bug"), "error", "internal"),
    ],
)
def test_middleware_reports_failures_and_lets_them_pass(
    error: Exception, outcome: str, error_type: str
) -> None:
    async def scenario() -> None:
        store = MemoryTrackStore()
        name = f"track-{error_type}"
        track = TrackingMiddleware(store, tier="low")

        async def call_next(dep: Deployment, req: ChatRequest) -> ChatResponse:
            raise error

        labels = {"deployment": name}
        calls = sample("parjanya_provider_calls_total", **labels, outcome=outcome)
        errors = sample("parjanya_provider_errors_total", **labels, error_type=error_type)
        gauge = sample("parjanya_inflight_calls", tier="low")
        with pytest.raises(type(error)) as raised:
            await track(deployment(name), REQUEST, call_next)

        assert raised.value is error
        assert sample("parjanya_provider_calls_total", **labels, outcome=outcome) == calls + 1
        assert (
            sample("parjanya_provider_errors_total", **labels, error_type=error_type) == errors + 1
        )
        assert sample("parjanya_inflight_calls", tier="low") == gauge
        assert await store.inflight([name]) == {name: 0}
        assert await store.latency([name]) == {name: None}  # failures are not latency samples

    asyncio.run(scenario())


def test_middleware_ends_the_lease_when_the_call_is_cancelled() -> None:
    async def scenario() -> None:
        store = MemoryTrackStore()
        started = asyncio.Event()

        async def call_next(dep: Deployment, req: ChatRequest) -> ChatResponse:
            started.set()
            await asyncio.sleep(3600)
            raise AssertionError("not reached")

        task = asyncio.create_task(TrackingMiddleware(store)(deployment("d1"), REQUEST, call_next))
        await started.wait()
        assert await store.inflight(["d1"]) == {"d1": 1}
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await store.inflight(["d1"]) == {"d1": 0}

    asyncio.run(scenario())


def test_middleware_leases_for_twice_the_timeout_plus_a_margin() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        store = MemoryTrackStore(clock=clock)
        d = deployment("d1", timeout_s=20.0)
        assert default_lease_s(d) == 70.0

        async def call_next(dep: Deployment, req: ChatRequest) -> ChatResponse:
            clock.advance(69)
            assert await store.inflight(["d1"]) == {"d1": 1}
            clock.advance(2)  # past the lease: a call this long no longer counts
            assert await store.inflight(["d1"]) == {"d1": 0}
            return response(dep.name)

        await TrackingMiddleware(store)(d, REQUEST, call_next)

    asyncio.run(scenario())


def test_a_broken_store_never_fails_the_call() -> None:
    class Broken(MemoryTrackStore):
        async def begin(self, deployment: str, call_id: str, lease_s: float) -> None:
            raise ConnectionError("redis down")

        async def end(self, deployment: str, call_id: str) -> None:
            raise ConnectionError("redis down")

        async def observe_latency(self, deployment: str, seconds: float) -> float:
            raise ConnectionError("redis down")

    async def call_next(dep: Deployment, req: ChatRequest) -> ChatResponse:
        return response(dep.name)

    result = asyncio.run(TrackingMiddleware(Broken())(deployment("d1"), REQUEST, call_next))
    assert result.deployment == "d1"


def test_a_cached_response_is_not_a_latency_sample() -> None:
    async def scenario() -> None:
        store = MemoryTrackStore()

        async def call_next(dep: Deployment, req: ChatRequest) -> ChatResponse:
            return response(dep.name, cached=True)

        before = sample("parjanya_provider_calls_total", deployment="d-cached", outcome="cached")
        await TrackingMiddleware(store)(deployment("d-cached"), REQUEST, call_next)
        assert await store.latency(["d-cached"]) == {"d-cached": None}
        after = sample("parjanya_provider_calls_total", deployment="d-cached", outcome="cached")
        assert after == before + 1

    asyncio.run(scenario())
