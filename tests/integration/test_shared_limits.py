"""Breakers and rate limits shared by separate OS processes through a real redis-server.

Each worker is a spawned process with its own event loop and its own Redis connection, using the
server's clock as production does. Names are unique per test; nothing here flushes the database.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
import uuid
from collections.abc import Callable
from multiprocessing.synchronize import Barrier
from queue import Empty
from typing import Any

import pytest
import redis.asyncio as aioredis

from parjanya import keys
from parjanya.config import BreakerConfig, Deployment
from parjanya.providers.base import (
    ChatRequest,
    ChatResponse,
    CircuitOpen,
    LocalRateLimited,
    ServerError,
)
from parjanya.resilience.breaker import BreakerEvent, BreakerMiddleware
from parjanya.resilience.breaker_store import RedisBreakerStore
from parjanya.resilience.gcra import Demand, Limit
from parjanya.resilience.ratelimit import RateLimitMiddleware
from parjanya.resilience.ratelimit_store import MemoryRateLimitStore, RedisRateLimitStore
from parjanya.schema import ChatMessage

pytestmark = pytest.mark.integration

PROCESSES = 3
REQUEST = ChatRequest(messages=[ChatMessage(role="user", content="hi")], max_tokens=8)
RESET_AFTER_S = 1.5
RPM = 600  # one every 0.1 s: rpm=60 scaled down by ten, so seconds stand in for minutes
BURST_S = 0.5  # five at once
RUN_S = 3.0


def deployment(name: str, **limits: Any) -> Deployment:
    return Deployment(
        name=name,
        base_url="http://127.0.0.1:9/v1",
        model="m",
        price_in_per_mtok=0,
        price_out_per_mtok=0,
        context_window=1000,
        **limits,
    )


def spawn(target: Callable[..., None], *args: Any) -> list[dict[str, Any]]:
    """Run `target(index, barrier, results, *args)` in PROCESSES fresh processes; their reports."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(PROCESSES, timeout=60), context.Queue()
    workers = [
        context.Process(target=target, args=(i, barrier, results, *args), daemon=True)
        for i in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    reports = []
    try:
        for _ in workers:
            reports.append(results.get(timeout=60))
    except Empty:
        pytest.fail("a worker process did not report")
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    assert all(w.exitcode == 0 for w in workers), [w.exitcode for w in workers]
    return sorted(reports, key=lambda r: int(r["index"]))


# --- (a) one breaker, three processes ------------------------------------------------------------


def breaker_worker(index: int, barrier: Barrier, results: Any, url: str, name: str) -> None:
    results.put(asyncio.run(_breaker_worker(index, barrier, url, name)))


async def _breaker_worker(index: int, barrier: Barrier, url: str, name: str) -> dict[str, Any]:
    client = aioredis.Redis.from_url(url)
    events: list[BreakerEvent] = []
    breaker = BreakerMiddleware(
        RedisBreakerStore(client),
        BreakerConfig(failure_threshold=3, reset_after_s=RESET_AFTER_S),
        listeners=[events.append],
        probe_lease_s=10,
    )
    target = deployment(name)
    calls = 0

    async def attempt(error: Exception | None = None, delay: float = 0.0) -> str:
        async def endpoint(d: Deployment, r: ChatRequest) -> ChatResponse:
            nonlocal calls
            calls += 1
            await asyncio.sleep(delay)
            if error is not None:
                raise error
            return ChatResponse(text="ok", model="m", deployment=d.name)

        try:
            await breaker(target, REQUEST, endpoint)
        except CircuitOpen:
            return "refused"
        except ServerError:
            return "failed"
        return "ok"

    if index == 0:  # one process sees the deployment fail...
        for _ in range(3):
            await attempt(ServerError("down", deployment=name, status=503))
    barrier.wait()
    after_open = await attempt()  # ...and every process stops calling it
    calls_before_probe = calls
    barrier.wait()
    await asyncio.sleep(RESET_AFTER_S + 0.2)
    barrier.wait()  # all at once, five each, while the probe takes 0.5 s
    probes = await asyncio.gather(*(attempt(delay=0.5) for _ in range(5)))
    await client.aclose()
    return {
        "index": index,
        "after_open": after_open,
        "probes": probes,
        "probe_calls": calls - calls_before_probe,
        "events": [(e.previous, e.state) for e in events],
    }


def test_a_breaker_opened_by_one_process_is_open_for_all_and_admits_one_probe(
    redis_url: str,
) -> None:
    name = f"it-breaker-{uuid.uuid4().hex[:10]}"
    reports = spawn(breaker_worker, redis_url, name)

    assert reports[0]["events"][0] == ("closed", "open")
    assert [r["after_open"] for r in reports] == ["refused"] * PROCESSES
    outcomes = [o for r in reports for o in r["probes"]]
    assert sorted(outcomes) == ["ok"] + ["refused"] * (5 * PROCESSES - 1)
    assert sum(r["probe_calls"] for r in reports) == 1
    everything = [e for r in reports for e in r["events"]]  # each transition emitted once
    assert sorted(everything) == sorted(
        [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    )

    async def final_state() -> str:
        client = aioredis.Redis.from_url(redis_url)
        state = (await RedisBreakerStore(client).load(name)).record.state
        await client.delete(keys.breaker(name))
        await client.aclose()
        return state

    assert asyncio.run(final_state()) == "closed"


# --- (b) one rpm budget, three processes ---------------------------------------------------------


def rate_worker(index: int, barrier: Barrier, results: Any, url: str, name: str) -> None:
    results.put(asyncio.run(_rate_worker(index, barrier, url, name)))


async def _rate_worker(index: int, barrier: Barrier, url: str, name: str) -> dict[str, Any]:
    client = aioredis.Redis.from_url(url)
    limiter = RateLimitMiddleware(RedisRateLimitStore(client), max_wait_s=0.3, burst_s=BURST_S)
    target = deployment(name, rpm=RPM)
    stamps: list[float] = []
    refused = 0

    async def endpoint(d: Deployment, r: ChatRequest) -> ChatResponse:
        stamps.append(time.time())
        return ChatResponse(text="ok", model="m", deployment=d.name)

    barrier.wait()
    end = time.time() + RUN_S
    while time.time() < end:  # as fast as the budget allows
        try:
            await limiter(target, REQUEST, endpoint)
        except LocalRateLimited as exc:
            refused += 1
            await asyncio.sleep(min(exc.wait_s or 0.0, 0.05))
    await client.aclose()
    return {"index": index, "stamps": stamps, "refused": refused}


def test_three_processes_share_one_rpm_budget(redis_url: str) -> None:
    name = f"it-rpm-{uuid.uuid4().hex[:10]}"
    reports = spawn(rate_worker, redis_url, name)

    interval, slack = 60 / RPM, 2  # slack: a sleep that wakes a few ms late bunches two calls
    stamps = sorted(s for r in reports for s in r["stamps"])
    assert all(r["stamps"] for r in reports)  # every process got a share
    span = stamps[-1] - stamps[0]
    assert len(stamps) <= (span + BURST_S) / interval + 1 + slack
    assert len(stamps) >= 0.8 * RUN_S / interval  # and the budget was actually used
    for i, start in enumerate(stamps):  # GCRA bound: any 1 s holds at most (1 + burst) / interval
        inside = sum(1 for s in stamps[i:] if s < start + 1.0)
        assert inside <= (1.0 + BURST_S) / interval + slack, (start, inside)


def test_the_lua_gcra_matches_the_python_one_on_a_real_server(redis_url: str) -> None:
    rng, clock = random.Random(11), [1_800_000_000.0]
    rpm, tpm = Limit("rpm", 60, burst_s=5), Limit("tpm", 600, burst_s=5)
    name = f"it-gcra-{uuid.uuid4().hex[:10]}"

    async def go() -> None:
        client = aioredis.Redis.from_url(redis_url)
        memory = MemoryRateLimitStore(lambda: clock[0])
        shared = RedisRateLimitStore(client, clock=lambda: clock[0])
        for _ in range(200):
            clock[0] += rng.choice([0.0, 0.05, 0.3, 1.7])
            if rng.random() < 0.2:
                change = [Demand(tpm, rng.randint(-60, 60))]
                await memory.adjust(name, change)
                await shared.adjust(name, change)
                continue
            demands = [Demand(rpm, 1), Demand(tpm, rng.randint(1, 80))]
            wait = rng.choice([0.0, 0.5, 3.0])
            a, b = (
                await memory.reserve(name, demands, wait),
                await shared.reserve(name, demands, wait),
            )
            assert a.allowed == b.allowed
            assert a.wait_s == pytest.approx(b.wait_s, abs=1e-5)
            left = await memory.remaining(name, [rpm, tpm])
            assert left == pytest.approx(await shared.remaining(name, [rpm, tpm]), abs=1e-3)
        await client.delete(keys.rate_limit(name, "rpm"), keys.rate_limit(name, "tpm"))
        await client.aclose()

    asyncio.run(go())
