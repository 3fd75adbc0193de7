"""Balancers: each strategy's order, deterministic ties, shared rotation, weighted draws, the factory."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any, get_args

import fakeredis
import pytest

from parjanya.config import BalanceStrategy, Deployment
from parjanya.providers.base import ChatRequest
from parjanya.resilience.balance import (
    BALANCERS,
    LeastBusy,
    LowestCost,
    LowestLatency,
    MostCapacity,
    Ordered,
    RoundRobin,
    Weighted,
    make_balancer,
    rotation_group,
)
from parjanya.resilience.base import Balancer
from parjanya.resilience.track import MemoryTrackStore, RedisTrackStore
from parjanya.schema import ChatMessage

REQUEST = ChatRequest(messages=[ChatMessage(role="user", content="x" * 400)], max_tokens=100)


def deployment(name: str, **extra: Any) -> Deployment:
    fields: dict[str, Any] = {
        "price_in_per_mtok": 1.0,
        "price_out_per_mtok": 4.0,
        "context_window": 8_000,
    }
    fields.update(extra)
    return Deployment(name=name, base_url=f"http://{name}.test/v1", model=name, **fields)


A, B, C = deployment("a"), deployment("b"), deployment("c")
TIER = [A, B, C]


def order(balancer: Balancer, deployments: Sequence[Deployment] = TIER) -> list[str]:
    return [d.name for d in asyncio.run(balancer.order(deployments, REQUEST))]


class FakeCapacity:
    def __init__(self, remaining: dict[str, float]) -> None:
        self.left = remaining

    async def remaining(self, deployment: Deployment) -> float:
        return self.left.get(deployment.name, 1.0)


class DownStats:
    """A store whose Redis is unreachable."""

    async def inflight(self, deployments: Sequence[str]) -> dict[str, int]:
        raise ConnectionError("redis down")

    async def latency(self, deployments: Sequence[str]) -> dict[str, float | None]:
        raise ConnectionError("redis down")

    async def rotate(self, group: str) -> int:
        raise ConnectionError("redis down")


# --- ordered -------------------------------------------------------------------------------


def test_ordered_keeps_the_config_order() -> None:
    assert order(Ordered()) == ["a", "b", "c"]
    assert order(Ordered(), [C, A]) == ["c", "a"]


# --- round robin ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_round_robin_rotates_across_balancers_sharing_a_store(backend: str) -> None:
    async def scenario() -> list[list[str]]:
        if backend == "memory":
            shared = MemoryTrackStore()
            stores: list[Any] = [shared, shared]
        else:
            server = fakeredis.FakeServer()
            stores = [RedisTrackStore(fakeredis.FakeAsyncRedis(server=server)) for _ in range(2)]
        # Two worker processes, each with its own balancer, alternately taking calls
        workers = [RoundRobin(store) for store in stores]
        orders = []
        for turn in range(6):
            picked = await workers[turn % 2].order(TIER, REQUEST)
            orders.append([d.name for d in picked])
        return orders

    assert asyncio.run(scenario()) == [
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
    ]


def test_round_robin_keeps_one_rotation_per_list_of_deployments() -> None:
    balancer = RoundRobin(MemoryTrackStore())
    assert order(balancer, [A, B]) == ["a", "b"]
    assert order(balancer, [A, B, C]) == ["a", "b", "c"]  # another tier: its own counter
    assert order(balancer, [A, B]) == ["b", "a"]
    assert rotation_group([A, B]) != rotation_group([B, A])


def test_round_robin_rotates_per_process_when_the_store_is_down() -> None:
    balancer = RoundRobin(DownStats())
    assert [order(balancer)[0] for _ in range(4)] == ["a", "b", "c", "a"]


# --- weighted ------------------------------------------------------------------------------


def test_weighted_draws_in_proportion_to_weight() -> None:
    tier = [deployment("a", weight=1), deployment("b", weight=3), deployment("c", weight=6)]
    balancer = Weighted(random.Random(1234))
    firsts = Counter(order(balancer, tier)[0] for _ in range(1000))
    assert firsts.keys() == {"a", "b", "c"}
    assert 70 <= firsts["a"] <= 130
    assert 250 <= firsts["b"] <= 350
    assert 540 <= firsts["c"] <= 660


def test_weighted_rest_follow_heaviest_first_ties_in_config_order() -> None:
    tier = [
        deployment("a", weight=1),
        deployment("b", weight=2),
        deployment("c", weight=2),
        deployment("d", weight=5),
    ]
    for seed in range(50):
        names = order(Weighted(random.Random(seed)), tier)
        rest = [n for n in ["d", "b", "c", "a"] if n != names[0]]
        assert names[1:] == rest


def test_weighted_is_reproducible_with_a_seed() -> None:
    draws = Weighted(random.Random(7))
    replay = Weighted(random.Random(7))
    assert [order(draws) for _ in range(20)] == [order(replay) for _ in range(20)]


def test_weighted_single_deployment() -> None:
    assert order(Weighted(random.Random(0)), [A]) == ["a"]


# --- least busy ----------------------------------------------------------------------------


def test_least_busy_follows_in_flight_counts() -> None:
    async def scenario() -> None:
        store = MemoryTrackStore()
        balancer = LeastBusy(store)

        async def names() -> list[str]:
            return [d.name for d in await balancer.order(TIER, REQUEST)]

        assert await names() == ["a", "b", "c"]  # all idle: config order
        await store.begin("a", "1", 60)
        await store.begin("a", "2", 60)
        await store.begin("b", "3", 60)
        assert await names() == ["c", "b", "a"]
        await store.begin("c", "4", 60)
        assert await names() == ["b", "c", "a"]  # b and c tie at 1: config order
        await store.end("a", "1")
        await store.end("a", "2")
        assert await names() == ["a", "b", "c"]

    asyncio.run(scenario())


def test_least_busy_reads_counts_shared_through_redis() -> None:
    async def scenario() -> list[str]:
        server = fakeredis.FakeServer()
        other_worker = RedisTrackStore(fakeredis.FakeAsyncRedis(server=server))
        await other_worker.begin("a", "x", 60)
        mine = RedisTrackStore(fakeredis.FakeAsyncRedis(server=server))
        return [d.name for d in await LeastBusy(mine).order([A, B], REQUEST)]

    assert asyncio.run(scenario()) == ["b", "a"]


def test_least_busy_uses_config_order_when_the_store_is_down() -> None:
    assert order(LeastBusy(DownStats())) == ["a", "b", "c"]


# --- lowest latency ------------------------------------------------------------------------


def test_lowest_latency_measures_the_unmeasured_first_then_fastest() -> None:
    async def scenario() -> None:
        store = MemoryTrackStore(alpha=1.0)
        balancer = LowestLatency(store)
        tier = [A, B, C, deployment("d")]

        async def names() -> list[str]:
            return [d.name for d in await balancer.order(tier, REQUEST)]

        assert await names() == ["a", "b", "c", "d"]
        await store.observe_latency("a", 2.0)
        await store.observe_latency("c", 0.5)
        assert await names() == ["b", "d", "c", "a"]  # b, d unmeasured (config order)
        await store.observe_latency("b", 0.5)
        await store.observe_latency("d", 3.0)
        assert await names() == ["b", "c", "a", "d"]  # b and c tie at 0.5: config order

    asyncio.run(scenario())


def test_lowest_latency_uses_config_order_when_the_store_is_down() -> None:
    assert order(LowestLatency(DownStats())) == ["a", "b", "c"]


# --- lowest cost ---------------------------------------------------------------------------


def test_lowest_cost_prices_estimated_input_and_the_output_budget() -> None:
    input_heavy = deployment("input_heavy", price_in_per_mtok=10.0, price_out_per_mtok=1.0)
    output_heavy = deployment("output_heavy", price_in_per_mtok=1.0, price_out_per_mtok=10.0)
    tier = [input_heavy, output_heavy]
    long_prompt = ChatRequest(
        messages=[ChatMessage(role="user", content="x" * 40_000)], max_tokens=10
    )
    long_answer = ChatRequest(messages=[ChatMessage(role="user", content="x")], max_tokens=4_000)

    def names(request: ChatRequest) -> list[str]:
        return [d.name for d in asyncio.run(LowestCost().order(tier, request))]

    assert names(long_prompt) == ["output_heavy", "input_heavy"]
    assert names(long_answer) == ["input_heavy", "output_heavy"]


def test_lowest_cost_ties_keep_config_order() -> None:
    cheap = deployment("cheap", price_in_per_mtok=0.1, price_out_per_mtok=0.4)
    assert order(LowestCost(), [A, B, cheap, C]) == ["cheap", "a", "b", "c"]


# --- most capacity -------------------------------------------------------------------------


def test_most_capacity_prefers_the_most_budget_left() -> None:
    probe = FakeCapacity({"a": 0.2, "b": 0.9, "c": 0.5})
    assert order(MostCapacity(probe)) == ["b", "c", "a"]


def test_most_capacity_clamps_and_ties_keep_config_order() -> None:
    probe = FakeCapacity({"a": 0.5, "b": 7.0, "c": -3.0})  # b clamps to 1.0 = d (unlimited)
    tier = [A, B, C, deployment("d")]
    assert order(MostCapacity(probe), tier) == ["b", "d", "a", "c"]


def test_most_capacity_uses_config_order_when_the_probe_fails() -> None:
    class Broken:
        async def remaining(self, deployment: Deployment) -> float:
            raise ConnectionError("redis down")

    assert order(MostCapacity(Broken())) == ["a", "b", "c"]


# --- the factory ---------------------------------------------------------------------------


def test_every_configured_strategy_has_exactly_one_balancer() -> None:
    assert set(BALANCERS) == set(get_args(BalanceStrategy))


@pytest.mark.parametrize(
    ("strategy", "kind"),
    [
        ("ordered", Ordered),
        ("round_robin", RoundRobin),
        ("weighted", Weighted),
        ("least_busy", LeastBusy),
        ("lowest_latency", LowestLatency),
        ("lowest_cost", LowestCost),
        ("most_capacity", MostCapacity),
    ],
)
def test_make_balancer_builds_the_strategy(strategy: BalanceStrategy, kind: type) -> None:
    balancer = make_balancer(
        strategy, stats=MemoryTrackStore(), capacity=FakeCapacity({}), rng=random.Random(0)
    )
    assert isinstance(balancer, kind)
    assert sorted(order(balancer)) == ["a", "b", "c"]  # every balancer returns every deployment


def test_make_balancer_passes_the_rng_to_weighted() -> None:
    rng = random.Random(3)
    balancer = make_balancer("weighted", stats=MemoryTrackStore(), capacity=None, rng=rng)
    assert isinstance(balancer, Weighted)
    assert balancer.rng is rng


def test_make_balancer_refuses_most_capacity_without_a_probe() -> None:
    with pytest.raises(ValueError, match="capacity probe"):
        make_balancer("most_capacity", stats=MemoryTrackStore(), capacity=None)


def test_make_balancer_refuses_an_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="unknown balance strategy 'fastest'"):
        make_balancer("fastest", stats=MemoryTrackStore(), capacity=None)  # type: ignore[arg-type]


def test_an_empty_list_orders_to_an_empty_list() -> None:
    for strategy in get_args(BalanceStrategy):
        balancer = make_balancer(
            strategy, stats=MemoryTrackStore(), capacity=FakeCapacity({}), rng=random.Random(0)
        )
        assert asyncio.run(balancer.order([], REQUEST)) == []
