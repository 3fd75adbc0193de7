"""Shared rpm/tpm budgets: the GCRA arithmetic, both stores held to the same answers, the middleware."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import fakeredis
import pytest
from prometheus_client import REGISTRY

from parjanya.config import Deployment
from parjanya.providers.base import (
    ChatRequest,
    ChatResponse,
    CircuitOpen,
    LocalRateLimited,
    ServerError,
)
from parjanya.resilience import gcra
from parjanya.resilience.base import estimate_tokens
from parjanya.resilience.gcra import Demand, Limit
from parjanya.resilience.ratelimit import (
    RateLimitCapacity,
    RateLimitMiddleware,
    Remaining,
    limits_for,
)
from parjanya.resilience.ratelimit_store import (
    MemoryRateLimitStore,
    RateLimitStore,
    RedisRateLimitStore,
)
from parjanya.schema import ChatMessage

T0 = 1_800_000_000.0
RPM = Limit("rpm", 60, burst_s=5)  # one a second, five at once
TPM = Limit("tpm", 600, burst_s=5)  # ten tokens a second, fifty at once
REQUEST = ChatRequest(messages=[ChatMessage(role="user", content="hi")], max_tokens=100)
ESTIMATE = estimate_tokens(REQUEST)  # 101


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def deployment(**limits: int | None) -> Deployment:
    return Deployment(
        name=f"unit-{uuid.uuid4().hex[:8]}",
        base_url="http://127.0.0.1:9/v1",
        model="m",
        price_in_per_mtok=0,
        price_out_per_mtok=0,
        context_window=10_000,
        **limits,
    )


# --- GCRA, pure -----------------------------------------------------------------------------------


def test_gcra_allows_the_burst_at_once_then_one_per_interval() -> None:
    tat: float | None = None
    admitted = 0
    while (p := gcra.plan([tat], [Demand(RPM, 1)], T0, 0.0)).allowed:
        tat, admitted = p.tats[0], admitted + 1
    assert admitted == 5 and p.wait_s == pytest.approx(1.0)
    assert gcra.plan([tat], [Demand(RPM, 1)], T0 + 1, 0.0).allowed
    assert not gcra.plan([tat], [Demand(RPM, 1)], T0 + 0.99, 0.0).allowed


def test_gcra_reserves_future_slots_up_to_max_wait() -> None:
    tat: float | None = T0 + 5  # the burst is spent
    waits = []
    for _ in range(3):
        p = gcra.plan([tat], [Demand(RPM, 1)], T0, 2.0)
        waits.append((p.allowed, round(p.wait_s, 6)))
        tat = p.tats[0]
    assert waits == [(True, 1.0), (True, 2.0), (False, 3.0)]


def test_gcra_a_demand_larger_than_the_burst_waits_for_a_full_budget_then_goes_into_debt() -> None:
    p = gcra.plan([None], [Demand(TPM, 200)], T0, 0.0)
    assert p.allowed and p.tats[0] == pytest.approx(T0 + 20)  # 200 tokens at 10/s
    nxt = gcra.plan(list(p.tats), [Demand(TPM, 10)], T0, 60.0)
    assert nxt.wait_s == pytest.approx(16.0)  # 20s of debt, less the 5s burst, plus 1s of cost


def test_gcra_all_dimensions_or_none() -> None:
    p = gcra.plan([None, T0 + 5], [Demand(RPM, 1), Demand(TPM, 10)], T0, 0.5)
    assert not p.allowed and p.wait_s == pytest.approx(1.0)
    assert p.tats == (T0, T0 + 5)  # nothing spent
    q = gcra.plan([None, T0 + 5], [Demand(RPM, 1), Demand(TPM, 10)], T0, 1.0)
    assert q.allowed and q.tats == pytest.approx((T0 + 2, T0 + 6))  # both start at T0 + 1


def test_gcra_adjust_spends_from_now_and_never_refunds_past_a_full_budget() -> None:
    assert gcra.adjust(T0 - 100, Demand(TPM, 10), T0) == pytest.approx(T0 + 1)
    assert gcra.adjust(T0 + 3, Demand(TPM, -10), T0) == pytest.approx(T0 + 2)
    assert gcra.adjust(T0 + 3, Demand(TPM, -1000), T0) == T0
    assert gcra.remaining(None, TPM, T0) == 600
    assert gcra.remaining(T0 + 6, TPM, T0) == pytest.approx(540)
    assert gcra.remaining(T0 + 600, TPM, T0) == 0


# --- both stores ---------------------------------------------------------------------------------

StoreFactory = Callable[[FakeClock], RateLimitStore]


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> StoreFactory:
    if request.param == "memory":
        return MemoryRateLimitStore
    server = fakeredis.FakeServer()
    return lambda clock: RedisRateLimitStore(fakeredis.FakeAsyncRedis(server=server), clock=clock)


def run(
    make_store: StoreFactory, body: Callable[[RateLimitStore, FakeClock], Coroutine[Any, Any, None]]
) -> None:
    clock = FakeClock()

    async def go() -> None:
        await body(make_store(clock), clock)

    asyncio.run(go())


def test_store_burst_then_steady_rate(make_store: StoreFactory) -> None:
    async def body(store: RateLimitStore, clock: FakeClock) -> None:
        admitted = [(await store.reserve("d", [Demand(RPM, 1)], 0.0)).allowed for _ in range(7)]
        assert admitted == [True] * 5 + [False] * 2
        refused = await store.reserve("d", [Demand(RPM, 1)], 0.0)
        assert refused.wait_s == pytest.approx(1.0)
        steady = []
        for _ in range(10):
            clock.advance(0.5)
            steady.append((await store.reserve("d", [Demand(RPM, 1)], 0.0)).allowed)
        assert steady.count(True) == 5  # one per second once the burst is spent

    run(make_store, body)


def test_store_reservations_queue_and_refusals_spend_nothing(make_store: StoreFactory) -> None:
    async def body(store: RateLimitStore, clock: FakeClock) -> None:
        both = [Demand(RPM, 1), Demand(TPM, 40)]
        assert (await store.reserve("d", both, 0.0)).allowed
        refused = await store.reserve("d", both, 0.0)  # tpm: 40 more need 3s
        assert not refused.allowed and refused.wait_s == pytest.approx(3.0)
        assert await store.remaining("d", [RPM, TPM]) == pytest.approx([59, 560])
        queued = await store.reserve("d", both, 3.0)
        assert queued.allowed and queued.wait_s == pytest.approx(3.0)
        # both were reserved for T0 + 3: the rpm TAT moves to T0 + 4, the tpm one to T0 + 8
        assert await store.remaining("d", [RPM, TPM]) == pytest.approx([56, 520])

    run(make_store, body)


def test_store_adjust_corrects_and_refunds(make_store: StoreFactory) -> None:
    async def body(store: RateLimitStore, clock: FakeClock) -> None:
        await store.reserve("d", [Demand(TPM, 30)], 0.0)
        await store.adjust("d", [Demand(TPM, 20)])
        assert await store.remaining("d", [TPM]) == pytest.approx([550])
        await store.adjust("d", [Demand(TPM, -1000)])  # never beyond a full budget
        assert await store.remaining("d", [TPM]) == pytest.approx([600])
        assert await store.remaining("other", [RPM, TPM]) == [60, 600]

    run(make_store, body)


def test_redis_lua_and_python_gcra_agree_on_a_random_workload() -> None:
    rng = random.Random(7)
    clock = FakeClock()

    async def go() -> None:
        memory = MemoryRateLimitStore(clock)
        redis = RedisRateLimitStore(
            fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer()), clock=clock
        )
        for _ in range(300):
            clock.advance(rng.choice([0.0, 0.05, 0.3, 1.7]))
            demands = [Demand(RPM, 1), Demand(TPM, rng.randint(1, 80))]
            wait = rng.choice([0.0, 0.5, 3.0])
            if rng.random() < 0.2:
                change = [Demand(TPM, rng.randint(-60, 60))]
                await memory.adjust("d", change)
                await redis.adjust("d", change)
                continue
            a, b = await memory.reserve("d", demands, wait), await redis.reserve("d", demands, wait)
            assert a.allowed == b.allowed and a.wait_s == pytest.approx(b.wait_s, abs=1e-5)
            left_a, left_b = (
                await memory.remaining("d", [RPM, TPM]),
                await redis.remaining("d", [RPM, TPM]),
            )
            assert left_a == pytest.approx(left_b, abs=1e-3)

    asyncio.run(go())


def test_redis_store_on_the_server_clock() -> None:
    async def go() -> None:
        store = RedisRateLimitStore(fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer()))
        results = [(await store.reserve("d", [Demand(RPM, 1)], 0.0)).allowed for _ in range(6)]
        assert results == [True] * 5 + [False]
        (left,) = await store.remaining("d", [RPM])
        assert 54.5 < left <= 55.1

    asyncio.run(go())


# --- the middleware ------------------------------------------------------------------------------


class Sleeps:
    """A fake asyncio.sleep that records each wait and moves the clock (unless told not to)."""

    def __init__(self, clock: FakeClock, advance: bool = True) -> None:
        self.clock, self.advance, self.waits = clock, advance, list[float]()

    async def __call__(self, seconds: float) -> None:
        self.waits.append(round(seconds, 6))
        if self.advance:
            self.clock.advance(seconds)
        await asyncio.sleep(0)


def answer(tokens_in: int = 0, tokens_out: int = 0, calls: list[str] | None = None) -> Any:
    async def endpoint(d: Deployment, r: ChatRequest) -> ChatResponse:
        if calls is not None:
            calls.append(d.name)
        return ChatResponse(
            text="ok", model="m", deployment=d.name, tokens_in=tokens_in, tokens_out=tokens_out
        )

    return endpoint


def fails(error: BaseException) -> Any:
    async def endpoint(d: Deployment, r: ChatRequest) -> ChatResponse:
        raise error

    return endpoint


class Unreachable:
    async def reserve(self, *args: Any) -> Any:
        raise ConnectionError("redis is down")

    adjust = remaining = reserve


def test_an_unlimited_deployment_costs_no_round_trip() -> None:
    limiter = RateLimitMiddleware(Unreachable(), 5.0)
    calls: list[str] = []
    asyncio.run(limiter(deployment(), REQUEST, answer(calls=calls)))
    assert len(calls) == 1
    assert asyncio.run(limiter.remaining(deployment())) == Remaining(None, None)
    assert limits_for(deployment(rpm=10)) == [Limit("rpm", 10)]


def test_an_unreachable_store_fails_open() -> None:
    limiter = RateLimitMiddleware(Unreachable(), 5.0)
    calls: list[str] = []
    asyncio.run(limiter(deployment(rpm=1, tpm=1), REQUEST, answer(calls=calls)))
    assert len(calls) == 1


def test_go_now_wait_briefly_or_refuse(make_store: StoreFactory) -> None:
    async def body(store: RateLimitStore, clock: FakeClock) -> None:
        sleeps = Sleeps(clock)
        limiter = RateLimitMiddleware(store, 2.0, burst_s=0, sleep=sleeps)
        target, calls = deployment(rpm=60), list[str]()
        await limiter(target, REQUEST, answer(calls=calls))
        await limiter(target, REQUEST, answer(calls=calls))
        assert sleeps.waits == [1.0] and len(calls) == 2
        sleeps.advance = False
        await limiter(target, REQUEST, answer(calls=calls))  # reserved at +1, +2 from the clock
        await limiter(target, REQUEST, answer(calls=calls))
        with pytest.raises(LocalRateLimited) as refused:
            await limiter(target, REQUEST, answer(calls=calls))
        assert refused.value.wait_s == pytest.approx(3.0) and len(calls) == 4
        assert refused.value.deployment == target.name

    run(make_store, body)


def test_concurrent_callers_each_reserve_their_own_slot(make_store: StoreFactory) -> None:
    async def body(store: RateLimitStore, clock: FakeClock) -> None:
        sleeps = Sleeps(clock, advance=False)
        limiter = RateLimitMiddleware(store, 5.0, burst_s=0, sleep=sleeps)
        target, calls = deployment(rpm=60), list[str]()
        outcomes = await asyncio.gather(
            *(limiter(target, REQUEST, answer(calls=calls)) for _ in range(20)),
            return_exceptions=True,
        )
        refused = [o for o in outcomes if isinstance(o, LocalRateLimited)]
        assert len(calls) == 6 and len(refused) == 14
        assert sorted(sleeps.waits) == [1.0, 2.0, 3.0, 4.0, 5.0]  # no two share a slot
        assert {round(r.wait_s or 0, 6) for r in refused} == {6.0}

    run(make_store, body)


def test_tokens_are_estimated_then_corrected_to_actual_usage(make_store: StoreFactory) -> None:
    async def body(store: RateLimitStore, clock: FakeClock) -> None:
        limiter = RateLimitMiddleware(store, 5.0)
        target = deployment(rpm=60, tpm=6000)
        seen: list[Remaining] = []

        async def endpoint(d: Deployment, r: ChatRequest) -> ChatResponse:
            seen.append(await limiter.remaining(d))
            return ChatResponse(text="ok", model="m", deployment=d.name, tokens_in=5, tokens_out=20)

        await limiter(target, REQUEST, endpoint)
        assert seen[0] == pytest.approx(Remaining(59, 6000 - ESTIMATE))
        assert await limiter.remaining(target) == pytest.approx(Remaining(59, 6000 - 25))
        await limiter(target, REQUEST, answer())  # no usage reported: the estimate stands
        assert await limiter.remaining(target) == pytest.approx(Remaining(58, 6000 - 25 - ESTIMATE))

    run(make_store, body)


def test_refunds_after_a_refusal_a_failure_and_a_cancelled_wait(make_store: StoreFactory) -> None:
    async def body(store: RateLimitStore, clock: FakeClock) -> None:
        limiter = RateLimitMiddleware(store, 5.0, burst_s=0)
        target = deployment(rpm=60, tpm=6000)
        with pytest.raises(CircuitOpen):  # an inner piece refused: nothing was sent
            await limiter(target, REQUEST, fails(CircuitOpen("open", deployment=target.name)))
        assert await limiter.remaining(target) == pytest.approx(Remaining(60, 6000))
        with pytest.raises(ServerError):  # sent: the request and the prompt count, not the output
            await limiter(target, REQUEST, fails(ServerError("x", deployment=target.name)))
        assert await limiter.remaining(target) == pytest.approx(
            Remaining(59, 6000 - ESTIMATE + 100)
        )

        gate = asyncio.Event()

        async def never(seconds: float) -> None:
            await gate.wait()

        limiter.sleep = never
        paced = deployment(rpm=60)
        await limiter(paced, REQUEST, answer())
        waiting = asyncio.create_task(limiter(paced, REQUEST, answer()))  # must wait 1s
        await asyncio.sleep(0.01)
        assert await limiter.remaining(paced) == Remaining(58, None)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await limiter.remaining(paced) == Remaining(59, None)

    run(make_store, body)


def test_capacity_probe_reports_the_scarcer_share(make_store: StoreFactory) -> None:
    async def body(store: RateLimitStore, clock: FakeClock) -> None:
        limiter = RateLimitMiddleware(store, 5.0)
        probe = RateLimitCapacity(limiter)
        target = deployment(rpm=100, tpm=1000)
        assert await probe.remaining(target) == 1.0
        assert await probe.remaining(deployment()) == 1.0
        await limiter(target, REQUEST, answer(tokens_in=400, tokens_out=100))
        assert await probe.remaining(target) == pytest.approx(0.5)  # tpm is the scarcer

    run(make_store, body)


def test_waits_and_refusals_are_counted_per_deployment(make_store: StoreFactory) -> None:
    def sample(name: str, deployment: str) -> float:
        return REGISTRY.get_sample_value(name, {"deployment": deployment}) or 0.0

    async def body(store: RateLimitStore, clock: FakeClock) -> None:
        limiter = RateLimitMiddleware(store, 1.5, burst_s=0, sleep=Sleeps(clock, advance=False))
        target, calls = deployment(rpm=60), list[str]()
        waited = sample("parjanya_rate_limit_wait_seconds_count", target.name)
        waited_s = sample("parjanya_rate_limit_wait_seconds_sum", target.name)
        refused = sample("parjanya_rate_limited_total", target.name)
        await limiter(target, REQUEST, answer(calls=calls))  # at once: not a wait
        await limiter(target, REQUEST, answer(calls=calls))  # waits 1 s
        with pytest.raises(LocalRateLimited):
            await limiter(target, REQUEST, answer(calls=calls))  # 2 s > 1.5 s: refused
        name = target.name
        assert sample("parjanya_rate_limit_wait_seconds_count", name) - waited == 1
        assert sample("parjanya_rate_limit_wait_seconds_sum", name) - waited_s == pytest.approx(1.0)
        assert sample("parjanya_rate_limited_total", name) - refused == 1

    run(make_store, body)
