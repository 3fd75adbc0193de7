"""A hop's commit is retried through a store blip, within the lease, and then given up."""

from __future__ import annotations

import asyncio

import pytest
import redis

from parjanya.worker.persist import retrying


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def flaky(failures: int) -> tuple[list[int], object]:
    calls: list[int] = []

    async def write() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise redis.ConnectionError("store paused")
        return "committed"

    return calls, write


def test_a_commit_that_fails_a_few_times_lands_once_the_store_answers() -> None:
    clock = Clock()
    calls, write = flaky(3)
    result = asyncio.run(retrying(write, 30.0, sleep=clock.sleep, clock=clock))  # type: ignore[arg-type]
    assert result == "committed" and len(calls) == 4
    assert clock.slept == [0.1, 0.2, 0.4]


def test_a_store_down_for_longer_than_the_lease_is_given_up_to_the_reaper() -> None:
    clock = Clock()
    calls, write = flaky(1000)
    with pytest.raises(redis.ConnectionError):
        asyncio.run(retrying(write, 5.0, sleep=clock.sleep, clock=clock))  # type: ignore[arg-type]
    assert clock.now <= 5.0 and len(calls) > 3


def test_other_errors_are_not_retried() -> None:
    clock = Clock()
    calls: list[int] = []

    async def broken() -> None:
        calls.append(1)
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        asyncio.run(retrying(broken, 30.0, sleep=clock.sleep, clock=clock))
    assert calls == [1] and clock.slept == []
