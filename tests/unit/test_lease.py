"""Lease renewal with a fake clock and a store that fails or is slow: prompt retries, bounded pace."""

from __future__ import annotations

import itertools

import pytest
import redis

from parjanya.worker.lease import LeaseRenewer

TTL = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Store:
    """`heartbeat_many` that fails while `down`, and takes `slow` seconds of the fake clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock, self.down, self.slow = clock, False, 0.0
        self.calls: list[list[tuple[str, str]]] = []

    def __call__(self, held: list[tuple[str, str]], ttl_s: float) -> list[bool]:
        self.calls.append(held)
        self.clock.now += self.slow
        if self.down:
            raise redis.ConnectionError("paused")
        return [True] * len(held)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> Store:
    return Store(clock)


@pytest.fixture
def renewer(store: Store, clock: Clock) -> LeaseRenewer:
    renewer = LeaseRenewer(store, TTL, retry_s=0.1, clock=clock, start=False)
    renewer.hold("t1", "1").__enter__()
    return renewer


def test_a_healthy_renewal_comes_every_third_of_the_lease(
    renewer: LeaseRenewer, store: Store
) -> None:
    assert renewer.tick() == pytest.approx(TTL / 3)
    assert store.calls == [[("t1", "1")]]


def test_a_slow_round_trip_shortens_the_wait_instead_of_adding_to_it(
    renewer: LeaseRenewer, store: Store
) -> None:
    store.slow = 6.0
    assert renewer.tick() == pytest.approx(TTL / 3 - 6.0)
    store.slow = 15.0
    assert renewer.tick() == 0.0  # slower than a third: renew again at once


def test_a_failed_renewal_is_retried_promptly_and_backs_off_within_the_lease(
    renewer: LeaseRenewer, store: Store, clock: Clock
) -> None:
    renewer.tick()  # renewed at t=1000: the lease lasts until 1030
    store.down = True
    clock.now += TTL / 3
    waits, lefts = [], []
    for _ in range(8):
        lefts.append(1000 + TTL - clock.now)
        wait = renewer.tick()
        waits.append(wait)
        clock.now += wait
    assert waits[0] == pytest.approx(0.1)  # not a third of the lease
    assert waits[:4] == sorted(waits[:4])  # backing off...
    assert all(w <= left / 4 + 1e-9 for w, left in zip(waits, lefts, strict=True))  # ...in time
    store.down = False
    renewed_at = clock.now
    assert clock.now < 1000 + TTL  # a pause shorter than the lease: still held
    assert renewer.tick() == pytest.approx(TTL / 3)
    assert renewer._renewed_at == renewed_at


def test_a_pause_of_the_store_shorter_than_the_lease_loses_no_lease(
    renewer: LeaseRenewer, store: Store, clock: Clock
) -> None:
    """The store paused 20 s (less than the 30 s lease): the first renewal after it is in time."""
    renewer.tick()
    start = clock.now
    store.down = True
    attempts_at = []
    while clock.now < start + 20:
        wait = renewer.tick()
        attempts_at.append(clock.now)
        clock.now += wait
    store.down = False
    renewer.tick()
    assert store.calls[-1] and clock.now < start + TTL
    gaps = [b - a for a, b in itertools.pairwise(attempts_at)]
    assert max(gaps) <= TTL / 4  # retried often enough never to miss the window


def test_with_nothing_held_the_renewer_waits_and_calls_nothing(store: Store, clock: Clock) -> None:
    renewer = LeaseRenewer(store, TTL, clock=clock, start=False)
    assert renewer.tick() == pytest.approx(TTL / 3) and store.calls == []
    with renewer.hold("t", "1"):
        renewer.tick()
    renewer.tick()
    assert store.calls == [[("t", "1")]]


def test_past_the_leases_deadline_the_renewer_still_retries_promptly(
    renewer: LeaseRenewer, store: Store, clock: Clock
) -> None:
    """A pause longer than two thirds of the lease lapses it by the clock: the first renewal
    once the store is back must come soon, before the reaper's grace ends (worker/reaper.py)."""
    renewer.tick()
    store.down = True
    clock.now += TTL / 3
    waits = []
    while clock.now < 1000 + 2 * TTL:
        wait = renewer.tick()
        waits.append(wait)
        clock.now += wait
    assert max(waits) <= TTL / 10


def test_a_hop_that_finished_while_its_renewal_was_on_the_way_is_not_superseded(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    leases: dict[tuple[str, str], object] = {}

    def renew(held: list[tuple[str, str]], ttl_s: float) -> list[bool]:
        leases[("done", "1")].__exit__(None, None, None)  # type: ignore[attr-defined]
        return [False] * len(held)  # the commit landed first; and "lost" was taken over

    renewer = LeaseRenewer(renew, TTL, clock=clock, start=False)
    for key in (("done", "1"), ("lost", "1")):
        leases[key] = renewer.hold(*key).__enter__()
    renewer.tick()
    assert "lease on lost superseded" in caplog.text
    assert "lease on done" not in caplog.text
