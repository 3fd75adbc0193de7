"""One admission path (decode -> claim -> judge -> start) on fakeredis: verdicts, dead letters, totality."""

from __future__ import annotations

import json

import fakeredis
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parjanya import keys
from parjanya.broker.envelope import HopEnvelopes
from parjanya.queues import INTAKE_QUEUE, INTAKE_TASK, TIER_TASK, dead_letter_queue_for, queue_for
from parjanya.schema import HopMessage, TaskStatus
from parjanya.store import Claim, DeadLetterStore, TaskStore
from parjanya.worker.admission import Admission
from parjanya.worker.context import WorkerContext

from .conftest import queued_on_low, submit
from .test_decode import envelope


class Started:
    """A `start` that records the hops it was given (and can be told to fail)."""

    def __init__(self, fail: bool = False) -> None:
        self.hops: list[tuple[HopMessage, Claim]] = []
        self.fail = fail

    def __call__(self, ctx: WorkerContext, message: HopMessage, claim: Claim) -> None:
        if self.fail:
            raise RuntimeError("no room")
        self.hops.append((message, claim))


def intake(ctx: WorkerContext, start: Started) -> Admission:
    return Admission(
        ctx, INTAKE_QUEUE, task_name=INTAKE_TASK, holding=TaskStatus.classifying, start=start
    )


def message_for(ctx: WorkerContext, task_id: str, hop: int = 0) -> bytes:
    enqueue = HopEnvelopes(ctx.app).for_hop(HopMessage(task_id=task_id, hop=hop, stage="intake"))
    return enqueue.payload.encode()


def dead_letters(store: TaskStore) -> int:
    return int(store.redis.llen(dead_letter_queue_for("intake")))  # type: ignore[arg-type]


HOSTILE = [
    b"[1, 2, 3]",
    envelope(json.dumps([[], {}, {}]).encode(), task=INTAKE_TASK),
    b"[" * 50_000 + b"]" * 50_000,
    b"\xff\xfe not utf-8",
    b"x" * (2 << 20),
]


def test_a_batch_with_hostile_entries_starts_the_good_hop_and_dead_letters_each_bad_one_once(
    worker_ctx: WorkerContext, store: TaskStore
) -> None:
    task_id = submit(store)
    start = Started()
    started = intake(worker_ctx, start).admit_raw([*HOSTILE, message_for(worker_ctx, task_id)])
    assert started == 1 and [m.task_id for m, _ in start.hops] == [task_id]
    assert store.get(task_id).status == TaskStatus.classifying  # type: ignore[union-attr]
    assert dead_letters(store) == len(HOSTILE)
    letters = DeadLetterStore(store.redis).list(limit=10)
    assert all(letter.raw is not None and len(letter.raw) <= 4096 for letter in letters)
    assert any(letter.raw and letter.raw.startswith("base64:") for letter in letters)


def test_a_hop_of_no_known_task_is_dead_lettered_and_a_finished_one_skipped(
    worker_ctx: WorkerContext, store: TaskStore
) -> None:
    admission = intake(worker_ctx, Started())
    assert admission.admit_args([{"task_id": "nope", "hop": 0, "stage": "intake"}], {}) == "missing"
    assert dead_letters(store) == 1
    task_id = submit(store)
    assert (
        admission.admit_args([{"task_id": task_id, "hop": 0, "stage": "intake"}], {}) == "started"
    )
    assert admission.admit_args([{"task_id": task_id, "hop": 0, "stage": "intake"}], {}) == "busy"
    assert admission.admit_args([{"task_id": task_id, "hop": 5, "stage": "intake"}], {}) == "stale"
    assert dead_letters(store) == 1


def test_a_hop_delivered_too_often_is_dead_lettered_as_poison_without_running(
    worker_ctx: WorkerContext, store: TaskStore
) -> None:
    task_id = submit(store)
    limit = worker_ctx.config.reliability.max_deliveries
    store.redis.hset(keys.task(task_id), "deliveries", limit)
    start = Started()
    assert (
        intake(worker_ctx, start).admit_args(
            [{"task_id": task_id, "hop": 0, "stage": "intake"}], {}
        )
        == "poison"
    )
    assert start.hops == []
    result = store.get(task_id)
    assert result is not None and result.status == TaskStatus.dead_lettered
    assert result.error is not None and result.error.type == "poison"


def test_undecodable_task_arguments_are_dead_lettered_once(
    worker_ctx: WorkerContext, store: TaskStore
) -> None:
    admission = intake(worker_ctx, Started())
    assert admission.admit_args((), {}) == "undecodable"
    assert admission.admit_args([1, 2, 3], {}) == "undecodable"
    assert dead_letters(store) == 2


def test_a_hop_that_cannot_start_is_handed_back_uncounted(
    worker_ctx: WorkerContext, store: TaskStore
) -> None:
    task_id = submit(store)
    verdict = intake(worker_ctx, Started(fail=True)).admit_args(
        [{"task_id": task_id, "hop": 0, "stage": "intake"}], {}
    )
    assert verdict == "could not start"
    assert store.get(task_id).status == TaskStatus.queued  # type: ignore[union-attr]
    assert store.redis.hget(keys.task(task_id), "deliveries") in (b"0", None)


def test_of_several_suspects_in_a_batch_only_the_first_starts_and_the_rest_go_back_first(
    worker_ctx: WorkerContext, store: TaskStore
) -> None:
    """docs/RELIABILITY.md T3: a bystander that shared a poison hop's deaths is a suspect too.
    Handed back only after the first suspect started, its release could be cut off by the death
    that suspect causes, and count against it; so it goes back before anything starts."""
    isolate_after = worker_ctx.config.reliability.isolate_after
    bystander, poison, fresh = (submit(store, f"task {n}") for n in range(3))
    for task_id in (bystander, poison):
        store.redis.hset(keys.task(task_id), "deliveries", isolate_after)
    start = Started()
    raws = [message_for(worker_ctx, task_id) for task_id in (bystander, poison, fresh)]
    assert intake(worker_ctx, start).admit_raw(raws) == 2
    assert [m.task_id for m, _ in start.hops] == [fresh, bystander]  # suspects last
    assert store.get(poison).status == TaskStatus.queued  # type: ignore[union-attr]
    assert store.redis.hget(keys.task(poison), "deliveries") == str(isolate_after).encode()


def test_a_store_that_cannot_be_reached_leaves_hops_to_the_reaper(
    worker_ctx: WorkerContext,
) -> None:
    class Down(fakeredis.FakeRedis):
        def pipeline(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def,override]
            raise redis.ConnectionError("store down")

    worker_ctx.store = TaskStore(Down())
    start = Started()
    verdict = intake(worker_ctx, start).admit_args(
        [{"task_id": "t", "hop": 0, "stage": "intake"}], {}
    )
    assert verdict == "store unreachable" and start.hops == []


garbage = st.one_of(
    st.binary(max_size=500),
    st.recursive(
        st.none() | st.integers() | st.text(max_size=20),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
        max_leaves=15,
    ).map(lambda v: json.dumps(v).encode()),
    st.recursive(
        st.none() | st.integers() | st.text(max_size=20),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
        max_leaves=15,
    ).map(lambda v: json.dumps([v, {}, {}]).encode()),  # a body: wrapped per queue below
    st.integers(min_value=33, max_value=5000).map(lambda n: b"[" * n + b"]" * n),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(["intake", "low"]),
    st.lists(st.tuples(garbage, st.booleans()), min_size=1, max_size=8),
)
def test_garbage_of_every_shape_is_dead_lettered_exactly_once_and_admission_keeps_serving(
    worker_ctx: WorkerContext, store: TaskStore, stage: str, entries: list[tuple[bytes, bool]]
) -> None:
    """Raw garbage, or garbage bodies in a well-formed envelope, on the intake or a tier queue."""
    task = INTAKE_TASK if stage == "intake" else TIER_TASK
    batch = [envelope(raw, task=task) if wrapped else raw for raw, wrapped in entries]
    start = Started()
    queue = queue_for(stage)  # type: ignore[arg-type]
    holding = TaskStatus.classifying if stage == "intake" else TaskStatus.running
    admission = Admission(worker_ctx, queue, task_name=task, holding=holding, start=start)
    letters = dead_letter_queue_for(stage)  # type: ignore[arg-type]
    before = store.redis.llen(letters)
    admission.admit_raw(batch)
    assert store.redis.llen(letters) - before == len(batch)
    task_id = submit(store) if stage == "intake" else queued_on_low(store)
    hop = HopMessage(task_id=task_id, hop=0 if stage == "intake" else 1, stage=stage)  # type: ignore[arg-type]
    good = HopEnvelopes(worker_ctx.app).for_hop(hop).payload.encode()
    assert admission.admit_raw([good]) == 1  # and the next good hop is still served
    assert [m.task_id for m, _ in start.hops] == [task_id]


def test_task_arguments_nested_past_the_recursion_limit_are_dead_lettered_too(
    worker_ctx: WorkerContext, store: TaskStore
) -> None:
    deep: list[object] = []
    for _ in range(5000):
        deep = [deep]
    verdict = intake(worker_ctx, Started()).admit_args([deep], {"x": deep})
    assert verdict == "undecodable" and dead_letters(store) == 1
