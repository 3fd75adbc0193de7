"""The reaper on fakeredis with a fake clock: it republishes a dead holder's hop, but not in the
race with live holders' renewals right after the store was away (docs/RELIABILITY.md mode 5)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from parjanya import keys
from parjanya.app import create_app
from parjanya.broker.publish import HopPublisher
from parjanya.config import ParjanyaConfig, Settings
from parjanya.schema import HopMessage, TaskRequest, TaskStatus
from parjanya.store import TaskStore
from parjanya.worker.reaper import Reaper

LEASE_TTL_S, INTERVAL_S = 6.0, 0.5


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Away:
    """The store's client, whose round trips fail while `down` or take `slow` fake seconds."""

    def __init__(self, real: redis.Redis, clock: Clock) -> None:
        self.real, self.clock, self.down, self.slow = real, clock, False, 0.0

    def set(self, *args: Any, **kwargs: Any) -> Any:
        self.clock.now += self.slow
        if self.down:
            raise redis.TimeoutError("the store does not answer")
        return self.real.set(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[HopMessage]:
    sent: list[HopMessage] = []
    monkeypatch.setattr(HopPublisher, "publish", lambda self, hop: sent.append(hop))
    return sent


def _reaper(store: TaskStore, clock: Clock) -> tuple[Reaper, Away]:
    app = create_app(Settings(broker_url="redis://127.0.0.1:1/0"), ParjanyaConfig())
    reaper = Reaper(
        store,
        app,
        interval_s=INTERVAL_S,
        requeue_after_s=600,
        lease_ttl_s=LEASE_TTL_S,
        clock=clock,
    )
    away = Away(store.redis, clock)
    store.redis = away  # type: ignore[assignment]
    return reaper, away


def _lapsed_lease(store: TaskStore) -> str:
    """A hop whose lease lapsed by the clock (its holder dead, or unable to renew)."""
    task_id = store.create(TaskRequest(prompt="Rename tmp."), requeue_after_s=600).task_id
    claim = store.claim(
        HopMessage(task_id=task_id, hop=0, stage="intake"),
        holding=TaskStatus.classifying,
        lease_ttl_s=0.01,
        max_deliveries=3,
    )
    assert claim.verdict == "claimed"
    time.sleep(0.03)
    return task_id


def _next_period(reaper: Reaper, clock: Clock) -> int:
    clock.now += INTERVAL_S
    reaper.store.redis.delete(keys.REAPER_LOCK)  # the lock lapses with the period
    try:
        return reaper.sweep()
    except redis.RedisError:
        return -1


def test_a_dead_holders_hop_is_republished_at_the_next_sweep(
    store: TaskStore, published: list[HopMessage]
) -> None:
    reaper, _ = _reaper(store, Clock())
    task_id = _lapsed_lease(store)
    assert reaper.sweep() == 1 and [m.task_id for m in published] == [task_id]


@pytest.mark.parametrize("how", ["failed", "slow"])
def test_after_the_store_was_away_nothing_is_republished_for_half_a_lease(
    store: TaskStore, published: list[HopMessage], how: str
) -> None:
    clock = Clock()
    reaper, away = _reaper(store, clock)
    task_id = _lapsed_lease(store)
    if how == "failed":  # round trips time out for a while
        away.down = True
        assert [_next_period(reaper, clock) for _ in range(3)] == [-1, -1, -1]
        away.down = False
    else:  # one round trip that waited out a pause of the store (SIGSTOP, swapping)
        away.slow = 4.0
        assert _next_period(reaper, clock) == 0
        away.slow = 0.0
    back = clock.now
    held_back = []
    while clock.now < back + LEASE_TTL_S / 2 - INTERVAL_S:
        held_back.append(_next_period(reaper, clock))
    assert held_back and set(held_back) == {0} and published == []  # live holders renew meanwhile
    clock.now = back + LEASE_TTL_S / 2
    assert _next_period(reaper, clock) == 1  # nobody renewed it: its holder is dead after all
    assert [m.task_id for m in published] == [task_id]
