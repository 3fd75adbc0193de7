"""Every key one store script call touches is in one Redis Cluster hash slot (`keys.py` shards).

A task's whole life runs through a `TaskStore` on fakeredis that records the keys of every EVALSHA
it sends, directly or in a pipeline, and each call's keys must share a slot as a Redis Cluster
computes it (`redis.crc.key_slot`). tests/integration/test_store_cluster.py runs the same scripts
on a real cluster.
"""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from redis.crc import key_slot

from parjanya import keys
from parjanya.broker.envelope import Enqueue
from parjanya.schema import DeadLetter, TaskRequest, TaskStatus
from parjanya.store import DeadLetterStore, TaskStore
from parjanya.store.creation import new_task_id
from parjanya.store.hops import transition_call
from tests.unit.store_calls import claim_hop


class _Recording(fakeredis.FakeRedis):
    """A fake Redis that writes down the keys of every script call, piped or not."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[list[str]] = []

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:  # type: ignore[override]
        self.calls.append([str(k) for k in keys_and_args[:numkeys]])
        return super().evalsha(sha, numkeys, *keys_and_args)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        send = pipe.evalsha

        def evalsha(sha: str, numkeys: int, *keys_and_args: Any) -> Any:
            self.calls.append([str(k) for k in keys_and_args[:numkeys]])
            return send(sha, numkeys, *keys_and_args)

        pipe.evalsha = evalsha  # type: ignore[method-assign]
        return pipe


def _slots(call_keys: list[str]) -> set[int]:
    return {key_slot(key.encode()) for key in call_keys}


_claim = claim_hop


def _a_whole_life(store: TaskStore) -> None:
    """Every script the store has: create (with and without an idempotency key, a repeat),
    uncreate, claim, heartbeat, release, transition (next hop, dead letter), replay, reap, cancel
    (queued and held), a raw dead letter."""
    plain = store.create(TaskRequest(prompt="a"), requeue_after_s=0).task_id
    keyed = store.create(TaskRequest(prompt="b", idempotency_key="k-1"), requeue_after_s=600)
    assert store.create(TaskRequest(prompt="b", idempotency_key="k-1"), requeue_after_s=600) == (
        type(keyed)(keyed.task_id, created=False)
    )
    assert store.uncreate(keyed.task_id, TaskRequest(prompt="b", idempotency_key="k-1"))

    claim = _claim(store, plain)
    assert claim.verdict == "claimed" and claim.doc is not None
    assert store.heartbeat(plain, claim.token, 30)
    assert store.release(plain, claim.token)
    claim = _claim(store, plain)
    assert store.transition(claim.doc, token=claim.token, hop=1, stage="low")
    claim = _claim(store, plain, hop=1, stage="low")
    claim.doc.status = TaskStatus.dead_lettered
    dead = DeadLetter(id=plain, queue="parjanya.dlq.low", reason="poison", task_id=plain)
    assert store.transition(claim.doc, token=claim.token, hop=1, stage="low", dead_letter=dead)
    assert [e.id for e in DeadLetterStore(store.redis).list()] == [plain]
    assert store.replay(plain, claim.doc, expected_hop=1, max_replays=3, requeue_after_s=0) == 2
    store.reap_due(requeue_after_s=30)

    queued = store.create(TaskRequest(prompt="c"), requeue_after_s=600).task_id
    assert store.cancel(queued, ttl_s=60) == "cancelled"
    held = store.create(TaskRequest(prompt="d"), requeue_after_s=600).task_id
    _claim(store, held)
    assert store.cancel(held, ttl_s=60) == "requested"
    store.dead_letter_raw("low", "unreadable", "{not json")


def test_every_script_call_of_a_task_s_life_stays_in_one_hash_slot() -> None:
    client = _Recording()
    store = TaskStore(client)
    store.dead_letter_lists = False  # as on a cluster (`connect.is_cluster`)
    _a_whole_life(store)

    assert len(client.calls) >= 14
    for call_keys in client.calls:
        assert len(_slots(call_keys)) == 1, call_keys


def test_on_a_plain_redis_only_the_dead_letter_list_copy_leaves_the_slot() -> None:
    client = _Recording()
    _a_whole_life(TaskStore(client))
    for call_keys in client.calls:
        in_slot = [k for k in call_keys if not k.startswith("parjanya.dlq.")]
        assert len(_slots(in_slot)) == 1, call_keys
    assert DeadLetterStore(client).queue_lengths()["parjanya.dlq.low"] == 1


def test_a_next_hop_pushed_in_the_commit_is_the_one_key_outside_the_slot() -> None:
    """The same-step enqueue is for a store that shares a plain Redis with its broker: the queue
    list is the broker's, in no shard (`broker.envelope`); a cluster store never gets one."""
    store = TaskStore(fakeredis.FakeRedis())
    task_id = store.create(TaskRequest(prompt="e"), requeue_after_s=600).task_id
    doc = _claim(store, task_id).doc
    pushed = Enqueue("parjanya.tier.low", "{}")
    call_keys, _ = transition_call(
        doc, now=0.0, token="1", hop=1, stage="low", enqueue=pushed, dead_letter_list=False
    )
    assert len(_slots([k for k in call_keys if k != "parjanya.tier.low"])) == 1


@pytest.mark.parametrize("shard", [0, 7, keys.SHARDS - 1])
def test_an_id_drawn_for_a_shard_lands_in_it(shard: int) -> None:
    assert keys.shard_of(new_task_id(shard)) == shard


def test_a_task_with_an_idempotency_key_shares_its_slot() -> None:
    store = TaskStore(fakeredis.FakeRedis())
    for n in range(40):
        key = f"order-{n}"
        task_id = store.create(TaskRequest(prompt="f", idempotency_key=key), requeue_after_s=60)
        assert key_slot(keys.idempotency(key).encode()) == key_slot(
            keys.task(task_id.task_id).encode()
        )


def test_a_webhook_outcome_s_keys_share_the_task_s_slot() -> None:
    """`Outbox.retry_at` and `finish` are MULTI transactions over these keys."""
    task_id = new_task_id()
    shard = keys.shard_of(task_id)
    together = [keys.webhook(task_id), keys.webhook_outbox(shard), keys.webhook_log(shard)]
    assert _slots(together) == _slots([keys.task(task_id)])


def test_the_shards_spread_over_the_hash_slots() -> None:
    """Distinct tags in distinct slots: a cluster can place every shard on its own primary."""
    assert len(_slots([keys.inflight(s) for s in keys.all_shards()])) == keys.SHARDS
