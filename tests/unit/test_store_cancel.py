"""Cancel in the store's state machine, on fakeredis (Lua included): queued ends now, held ends at
its next hop boundary, and a worker that claims a cancelled task is refused."""

from __future__ import annotations

from functools import partial

import fakeredis
import pytest

from parjanya import keys
from parjanya.schema import HopMessage, TaskRequest, TaskStatus
from parjanya.store import TaskStore
from tests.unit.store_calls import claim_hop


@pytest.fixture
def store() -> TaskStore:
    return TaskStore(fakeredis.FakeRedis())


def _submit(store: TaskStore) -> str:
    return store.create(TaskRequest(prompt="hello"), requeue_after_s=600).task_id


_claim = partial(claim_hop, holding=TaskStatus.running)


def test_a_queued_task_ends_cancelled_wakes_waiters_and_is_never_claimed(
    store: TaskStore,
) -> None:
    task_id = _submit(store)

    assert store.cancel(task_id, ttl_s=60) == "cancelled"

    result = store.get(task_id)
    assert result is not None and result.status == TaskStatus.cancelled
    assert result.error is not None and result.error.type == "cancelled"
    assert result.finished_at is not None
    assert store.wait_done(task_id, 0.1)
    assert store.redis.zscore(keys.inflight(keys.shard_of(task_id)), task_id) is None
    assert 0 < store.redis.ttl(keys.task(task_id)) <= 60
    assert _claim(store, task_id).verdict == "terminal"  # type: ignore[attr-defined]
    assert store.cancel(task_id, ttl_s=60) == "terminal"


def test_a_held_task_is_marked_and_its_next_hop_is_not_queued(store: TaskStore) -> None:
    task_id = _submit(store)
    claim = claim_hop(store, task_id)
    assert claim.doc is not None

    assert store.cancel(task_id, ttl_s=60) == "requested"
    assert store.get(task_id).status == TaskStatus.classifying  # type: ignore[union-attr]

    claim.doc.status = TaskStatus.queued  # the classifier routes it on to a tier...
    assert store.transition(claim.doc, token=claim.token, hop=1, stage="low", deadline_s=600)
    result = store.get(task_id)
    assert result is not None and result.status == TaskStatus.cancelled  # ...which never runs
    assert store.wait_done(task_id, 0.1)
    late = _claim(store, task_id, hop=1, stage="low")
    assert late.verdict == "terminal"  # type: ignore[attr-defined]


def test_a_held_task_that_finishes_keeps_its_answer(store: TaskStore) -> None:
    task_id = _submit(store)
    claim = store.claim(
        HopMessage(task_id=task_id, hop=0, stage="intake"),
        holding=TaskStatus.running,
        lease_ttl_s=30,
        max_deliveries=3,
    )
    assert claim.doc is not None
    assert store.cancel(task_id, ttl_s=60) == "requested"

    claim.doc.status = TaskStatus.succeeded
    claim.doc.output = "done"
    assert store.transition(claim.doc, token=claim.token, hop=0, stage="intake", ttl_s=60)
    result = store.get(task_id)
    assert result is not None and result.status == TaskStatus.succeeded
    assert result.output == "done"


def test_a_released_hop_of_a_cancel_requested_task_ends_at_its_next_claim(
    store: TaskStore,
) -> None:
    task_id = _submit(store)
    claim = store.claim(
        HopMessage(task_id=task_id, hop=0, stage="intake"),
        holding=TaskStatus.running,
        lease_ttl_s=30,
        max_deliveries=3,
    )
    assert store.cancel(task_id, ttl_s=60) == "requested"
    assert store.release(task_id, claim.token)

    assert _claim(store, task_id).verdict == "terminal"  # type: ignore[attr-defined]
    result = store.get(task_id)
    assert result is not None and result.status == TaskStatus.cancelled
    assert store.wait_done(task_id, 0.1)


def test_cancel_of_an_unknown_task_is_missing(store: TaskStore) -> None:
    assert store.cancel("nope", ttl_s=60) == "missing"
