"""Escalation and dead-letter commits ride out a short store blip, as the success commit does
(`worker/persist.py`): a hop whose call was paid for is not left to the reaper to run again."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from parjanya.broker.publish import HopPublisher
from parjanya.escalation import Escalate, GiveUp
from parjanya.resilience.fallback import TierCall
from parjanya.schema import HopMessage, TaskStatus
from parjanya.store import TaskStore
from parjanya.tasks.tier import conclude
from parjanya.worker.context import WorkerContext
from parjanya.worker.persist import retrying_blocking

from .conftest import held_on_low


class Blip:
    """The store's transitions, once armed, fail twice (a blip) and then go through."""

    def __init__(self, store: TaskStore) -> None:
        self.real, self.armed, self.attempts = store.transition, False, 0

    def __call__(self, *args: Any, **kwargs: Any) -> bool:
        if self.armed:
            self.attempts += 1
            if self.attempts <= 2:
                raise redis.ConnectionError("the store blipped")
        return self.real(*args, **kwargs)


@pytest.fixture
def blip(worker_ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch) -> Blip:
    blip = Blip(worker_ctx.store)
    monkeypatch.setattr(worker_ctx.store, "transition", blip)
    return blip


def test_an_escalation_commit_is_retried_through_a_blip_and_its_hop_published_once(
    worker_ctx: WorkerContext, blip: Blip, monkeypatch: pytest.MonkeyPatch
) -> None:
    published: list[HopMessage] = []
    monkeypatch.setattr(HopPublisher, "publish", lambda self, hop: published.append(hop))
    message, claim = held_on_low(worker_ctx.store)
    blip.armed = True
    conclude(worker_ctx, message, claim, TierCall(), None, Escalate(to="mid", reason="failover"))
    assert blip.attempts == 3
    doc = worker_ctx.store.get(message.task_id)
    assert doc is not None and doc.status == TaskStatus.queued
    assert worker_ctx.store.hop_of(message.task_id) == (2, "mid")
    assert published == [HopMessage(task_id=message.task_id, hop=2, stage="mid")]


def test_a_dead_letter_commit_is_retried_through_a_blip(
    worker_ctx: WorkerContext, blip: Blip
) -> None:
    message, claim = held_on_low(worker_ctx.store)
    blip.armed = True
    conclude(worker_ctx, message, claim, TierCall(), None, GiveUp(reason="every deployment failed"))
    assert blip.attempts == 3
    doc = worker_ctx.store.get(message.task_id)
    assert doc is not None and doc.status == TaskStatus.dead_lettered


def test_a_store_away_for_longer_than_the_lease_is_left_to_the_reaper() -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    def down() -> bool:
        raise redis.TimeoutError("the store does not answer")

    with pytest.raises(redis.TimeoutError):
        retrying_blocking(down, 5.0, sleep=sleep, clock=lambda: clock[0])
    assert slept == [0.1, 0.2, 0.4, 0.8, 1.6] and clock[0] <= 5.0
