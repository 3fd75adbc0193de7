"""The store's compare-and-set state machine, on fakeredis (Lua included). No broker involved."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import fakeredis
import pytest

from parjanya import keys
from parjanya.broker.envelope import Enqueue
from parjanya.schema import DeadLetter, HopMessage, TaskRequest, TaskStatus
from parjanya.store import DeadLetterStore, IdempotencyConflict, Renewal, TaskStore
from parjanya.store.batch import ScriptBatcher
from tests.unit.store_calls import claim_hop


def _submit(store: TaskStore, prompt: str = "hello", **extra: object) -> str:
    return store.create(TaskRequest(prompt=prompt, **extra), requeue_after_s=600).task_id  # type: ignore[arg-type]


_claim = claim_hop


def test_a_claimed_hop_is_busy_for_a_parallel_copy(store: TaskStore) -> None:
    task_id = _submit(store)
    first = _claim(store, task_id)
    assert first.verdict == "claimed" and first.token == "1"
    assert _claim(store, task_id).verdict == "busy"
    assert store.get(task_id).status == TaskStatus.classifying  # type: ignore[union-attr]


def test_an_expired_lease_is_taken_over_and_the_old_holder_is_fenced_off(store: TaskStore) -> None:
    task_id = _submit(store)
    old = _claim(store, task_id, ttl=0.01)
    time.sleep(0.02)
    new = _claim(store, task_id)
    assert new.verdict == "claimed" and new.token != old.token
    assert old.doc is not None
    old.doc.status = TaskStatus.succeeded
    assert not store.transition(old.doc, token=old.token, hop=0, stage="intake")
    assert not store.heartbeat(task_id, old.token, 30)
    assert store.heartbeat(task_id, new.token, 30)


def test_terminal_states_absorb_later_deliveries(store: TaskStore) -> None:
    task_id = _submit(store)
    claim = _claim(store, task_id)
    assert claim.doc is not None
    claim.doc.status = TaskStatus.succeeded
    claim.doc.output = "done"
    assert store.transition(claim.doc, token=claim.token, hop=0, stage="intake", ttl_s=60)
    assert _claim(store, task_id).verdict == "terminal"
    assert not store.transition(claim.doc, token=claim.token, hop=0, stage="intake")
    assert store.wait_done(task_id, 0.1)
    assert store.counters()["dedup_terminal"] == 1
    assert store.redis.zscore(keys.inflight(keys.shard_of(task_id)), task_id) is None


def test_a_message_for_an_old_hop_is_stale(store: TaskStore) -> None:
    task_id = _submit(store)
    claim = _claim(store, task_id)
    assert claim.doc is not None
    claim.doc.status = TaskStatus.queued
    assert store.transition(claim.doc, token=claim.token, hop=1, stage="low", deadline_s=600)
    assert _claim(store, task_id, hop=0).verdict == "stale"
    assert _claim(store, task_id, hop=1, stage="mid").verdict == "stale"
    assert _claim(store, task_id, hop=1, stage="low").verdict == "claimed"


def test_deliveries_over_the_limit_are_poison(store: TaskStore) -> None:
    task_id = _submit(store)
    verdicts = []
    for _ in range(4):
        verdicts.append(_claim(store, task_id, ttl=0.001).verdict)
        time.sleep(0.005)
    assert verdicts == ["claimed", "claimed", "claimed", "poison"]


def test_a_hop_handed_back_before_it_started_is_not_counted_as_a_delivery(
    store: TaskStore,
) -> None:
    task_id = _submit(store)
    first = _claim(store, task_id)
    assert first.deliveries == 1
    assert store.release(task_id, first.token)
    assert not store.release(task_id, first.token)  # once: the claim is no longer held
    assert store.reap_due(requeue_after_s=600) == [
        HopMessage(task_id=task_id, hop=0, stage="intake")
    ]  # type: ignore[arg-type]
    again = _claim(store, task_id)
    assert again.verdict == "claimed" and again.deliveries == 1
    assert not store.release(task_id, first.token)  # fenced: an old holder gives back nothing


def test_missing_task(store: TaskStore) -> None:
    assert _claim(store, "nope").verdict == "missing"


def test_idempotency_key_returns_the_first_task_and_refuses_a_different_body(
    store: TaskStore,
) -> None:
    first = store.create(TaskRequest(prompt="a", idempotency_key="k1"), requeue_after_s=600)
    again = store.create(TaskRequest(prompt="a", idempotency_key="k1"), requeue_after_s=600)
    assert first.created and not again.created and again.task_id == first.task_id
    with pytest.raises(IdempotencyConflict):
        store.create(TaskRequest(prompt="b", idempotency_key="k1"), requeue_after_s=600)


def test_uncreate_withdraws_an_unpublished_task(store: TaskStore) -> None:
    request = TaskRequest(prompt="a", idempotency_key="k2")
    created = store.create(request, requeue_after_s=600)
    assert store.uncreate(created.task_id, request)
    assert store.get(created.task_id) is None
    assert store.create(request, requeue_after_s=600).created


def _dead(store: TaskStore) -> str:
    task_id = _submit(store)
    claim = _claim(store, task_id)
    assert claim.doc is not None
    claim.doc.status = TaskStatus.dead_lettered
    entry = DeadLetter(id=task_id, queue="parjanya.dlq.intake", reason="boom", task_id=task_id)
    assert store.transition(claim.doc, token=claim.token, hop=0, stage="intake", dead_letter=entry)
    return task_id


def test_dead_letter_is_listed_on_its_queue_and_in_the_index(store: TaskStore) -> None:
    task_id = _dead(store)
    dead = DeadLetterStore(store.redis)
    assert [e.id for e in dead.list()] == [task_id]
    assert dead.queue_lengths()["parjanya.dlq.intake"] == 1
    assert store.get(task_id).status == TaskStatus.dead_lettered  # type: ignore[union-attr]
    assert store.redis.ttl(keys.task(task_id)) == -1  # dead letters never expire on their own


def test_of_two_concurrent_replays_exactly_one_wins(store: TaskStore) -> None:
    task_id = _dead(store)
    doc = store.get(task_id)
    assert doc is not None
    outcomes = [
        store.replay(task_id, doc, expected_hop=0, max_replays=5, requeue_after_s=600)
        for _ in range(2)
    ]
    assert outcomes == [1, -1]
    assert DeadLetterStore(store.redis).queue_lengths()["parjanya.dlq.intake"] == 0
    assert DeadLetterStore(store.redis).count() == 0
    assert _claim(store, task_id, hop=1).verdict == "claimed"


def test_reaper_republishes_an_expired_lease_and_a_stuck_queued_hop(store: TaskStore) -> None:
    running = _submit(store, "one")
    _claim(store, running, ttl=0.01)
    queued = store.create(TaskRequest(prompt="two"), requeue_after_s=0.01).task_id
    healthy = _submit(store, "three")
    time.sleep(0.03)
    owed = {m.task_id: m for m in store.reap_due(requeue_after_s=600)}
    assert set(owed) == {running, queued}
    assert owed[running].hop == 0 and owed[running].stage == "intake"
    assert store.get(running).status == TaskStatus.queued  # type: ignore[union-attr]
    assert healthy not in owed
    assert store.reap_due(requeue_after_s=600) == []  # backed off, not republished again at once


def test_dead_letter_raw_keeps_the_bytes(store: TaskStore) -> None:
    entry = store.dead_letter_raw("low", "garbage", "\x00not json")
    dead = DeadLetterStore(store.redis)
    assert dead.get(entry.id) == entry
    assert dead.queue_lengths()["parjanya.dlq.low"] == 1
    assert dead.purge() == 1
    assert dead.queue_lengths()["parjanya.dlq.low"] == 0


def test_create_and_transition_push_the_next_hop_in_the_same_step(store: TaskStore) -> None:
    pushed = Enqueue(queue="parjanya.intake", payload="intake-message")
    created = store.create(TaskRequest(prompt="hi"), requeue_after_s=600, enqueue=lambda _: pushed)
    assert created.created and created.enqueued
    assert store.redis.lrange("parjanya.intake", 0, -1) == [b"intake-message"]
    claim = _claim(store, created.task_id)
    assert claim.doc is not None
    following = Enqueue(queue="parjanya.tier.low", payload="tier-message")
    assert not store.transition(claim.doc, token="999", hop=1, stage="low", enqueue=following)
    assert store.redis.llen("parjanya.tier.low") == 0  # fenced off: nothing queued either
    assert store.transition(claim.doc, token=claim.token, hop=1, stage="low", enqueue=following)
    assert store.redis.lrange("parjanya.tier.low", 0, -1) == [b"tier-message"]


def test_a_duplicate_submission_pushes_nothing(store: TaskStore) -> None:
    pushed = Enqueue(queue="parjanya.intake", payload="m")
    request = TaskRequest(prompt="hi", idempotency_key="k1")
    first = store.create(request, requeue_after_s=600, enqueue=lambda _: pushed)
    again = store.create(request, requeue_after_s=600, enqueue=lambda _: pushed)
    assert again.task_id == first.task_id and not again.created and not again.enqueued
    assert store.redis.llen("parjanya.intake") == 1


def test_batched_claims_reload_a_script_the_server_forgot(store: TaskStore) -> None:
    ids = [_submit(store, f"task {n}") for n in range(3)]
    store.redis.script_flush()  # what a restarted Redis looks like to a running worker
    claims = store.claim_many(
        [HopMessage(task_id=i, hop=0, stage="intake") for i in ids],
        holding=TaskStatus.classifying,
        lease_ttl_s=30,
        max_deliveries=3,
    )
    assert [c.verdict for c in claims] == ["claimed"] * 3
    assert store.heartbeat_many([(i, "1") for i in ids], 30) == [Renewal.renewed] * 3


def test_a_renewal_tells_a_lease_superseded_from_one_its_holder_ended(store: TaskStore) -> None:
    """Only another claim supersedes a lease: a hop whose own commit landed before its lease was
    let go (the common case on a busy loop) is `ended`, and nobody is warned about it."""
    done, lapsed, running = (_submit(store, f"task {n}") for n in range(3))
    committed = _claim(store, done)
    assert committed.doc is not None
    committed.doc.status = TaskStatus.succeeded
    assert store.transition(committed.doc, token=committed.token, hop=0, stage="intake")
    old = _claim(store, lapsed, ttl=0.01)
    time.sleep(0.02)
    assert _claim(store, lapsed).verdict == "claimed"
    held = _claim(store, running)
    renewals = store.heartbeat_many(
        [(done, committed.token), (lapsed, old.token), (running, held.token)], 30
    )
    assert renewals == [Renewal.ended, Renewal.superseded, Renewal.renewed]
    assert not store.heartbeat(done, committed.token, 30)


def test_a_call_alone_in_its_turn_goes_without_a_pipeline_and_reloads_a_forgotten_script() -> None:
    server = fakeredis.FakeServer()
    store = TaskStore(fakeredis.FakeRedis(server=server))
    claim = _claim(store, _submit(store, "alone"))
    assert claim.doc is not None
    claim.doc.status = TaskStatus.succeeded
    store.redis.script_flush()
    client = fakeredis.FakeAsyncRedis(server=server)
    client.pipeline = None  # type: ignore[assignment,method-assign]  # a pipeline would raise
    batcher = ScriptBatcher(client, store.transition_script)
    call = store.transition_call(claim.doc, token=claim.token, hop=0, stage="intake", ttl_s=60)
    assert asyncio.run(batcher(*call))
    assert store.get(claim.doc.id).status == TaskStatus.succeeded  # type: ignore[union-attr]


def test_finishes_batched_on_the_event_loop_share_one_round_trip_and_stay_fenced() -> None:
    server = fakeredis.FakeServer()
    store = TaskStore(fakeredis.FakeRedis(server=server))
    ids = [_submit(store, f"task {n}") for n in range(20)]
    claims = [_claim(store, task_id) for task_id in ids]
    for claim in claims:
        assert claim.doc is not None
        claim.doc.status = TaskStatus.succeeded
    store.redis.script_flush()  # a restarted Redis: the batch loads the script and runs again
    client = fakeredis.FakeAsyncRedis(server=server)
    batcher = ScriptBatcher(client, store.transition_script)
    round_trips: list[int] = []
    real = client.pipeline

    def counting_pipeline(*args: Any, **kwargs: Any) -> Any:
        round_trips.append(1)
        return real(*args, **kwargs)

    client.pipeline = counting_pipeline  # type: ignore[method-assign]

    async def finish_all() -> list[Any]:
        calls = [
            store.transition_call(c.doc, token=c.token, hop=0, stage="intake", ttl_s=60)  # type: ignore[arg-type]
            for c in claims
        ]
        stale = store.transition_call(claims[0].doc, token="999", hop=0, stage="intake")  # type: ignore[arg-type]
        return await asyncio.gather(*(batcher(*call) for call in [*calls, stale]))

    replies = asyncio.run(finish_all())
    assert [bool(r) for r in replies] == [True] * 20 + [False]  # the wrong token is fenced off
    assert len(round_trips) == 2  # one batch, sent again after NOSCRIPT
    assert all(store.get(i).status == TaskStatus.succeeded for i in ids)  # type: ignore[union-attr]
