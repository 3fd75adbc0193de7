"""Deadlines: the estimate, the tier routing skips to, and `expired` in the store's state machine."""

from __future__ import annotations

import time
from datetime import timedelta
from functools import partial

import fakeredis
import pytest

from parjanya import keys
from parjanya.config import AdmissionConfig
from parjanya.governance.deadlines import (
    RECORD,
    LatencyBook,
    candidates,
    estimate_of,
    expire,
    first_fitting,
    quantile,
    route_in_time,
    time_left,
)
from parjanya.schema import (
    Complexity,
    DimensionScores,
    HopMessage,
    RoutingDecision,
    TaskRequest,
    TaskResult,
    TaskStatus,
    utcnow,
)
from parjanya.store import TaskStore
from parjanya.worker.context import WorkerContext
from tests.unit.store_calls import claim_hop


def test_quantiles_and_the_estimate() -> None:
    samples = [float(i) for i in range(1, 101)]
    assert quantile(samples, 0.95) == 95.0 and quantile(samples, 0.5) == 50.0
    assert estimate_of([], [5.0], 0.95) is None  # no run samples: unknown, assumed to fit
    assert estimate_of([1.0, 2.0, 10.0], [0.5, 3.0, 4.0], 0.95) == 10.0 + 3.0


def test_routing_tries_the_decided_tier_then_the_ones_above_up_to_the_ceiling() -> None:
    assert candidates("low", "high") == ["low", "mid", "high"]
    assert candidates("mid", "mid") == ["mid"]
    guesses = {"low": 9.0, "mid": None, "high": 2.0}
    assert first_fitting(["low", "mid", "high"], 5.0, guesses.get) == "mid"  # unknown fits
    assert first_fitting(["low", "high"], 5.0, guesses.get) == "high"
    assert first_fitting(["low", "high"], 1.0, guesses.get) is None


def _doc(request: TaskRequest, age_s: float) -> TaskResult:
    return TaskResult(
        id="t", status=TaskStatus.classifying, created_at=utcnow() - timedelta(seconds=age_s)
    )


def test_time_left_counts_from_creation() -> None:
    request = TaskRequest(prompt="x", deadline_s=10)
    left = time_left(request, _doc(request, 4))
    assert left is not None and 5.9 < left < 6.1
    assert time_left(TaskRequest(prompt="x"), _doc(request, 4)) is None


def _decision(tier: str, ceiling: str = "high") -> RoutingDecision:
    scores = DimensionScores(structural=1, cognitive=1, context=1, ambiguity=1, risk=1)
    return RoutingDecision(
        tier=tier,  # type: ignore[arg-type]
        max_tier=ceiling,  # type: ignore[arg-type]
        complexity=Complexity(score=2, dimensions=scores, domain="general"),
    )


def _record(
    client: fakeredis.FakeRedis, book: LatencyBook, tier: str, sla: str, wait: float, run: float
) -> None:
    call_keys, call_args = book.record_call(tier, sla, wait, run)  # type: ignore[arg-type]
    client.register_script(RECORD)(call_keys, call_args)


def test_route_in_time_skips_a_tier_whose_hops_plus_queue_wait_exceed_the_time_left() -> None:
    client = fakeredis.FakeRedis()
    book = LatencyBook(AdmissionConfig(latency_samples=10))
    for _ in range(12):  # capped at latency_samples
        _record(client, book, "low", "standard", wait=20.0, run=1.0)
        _record(client, book, "mid", "standard", wait=1.0, run=2.0)
    assert client.llen(keys.latency_run("low")) == 10
    request = TaskRequest(prompt="x", deadline_s=10)
    decision = _decision("low")
    assert route_in_time(book, client, request, _doc(request, 1), decision) is None
    assert decision.tier == "mid" and "deadline: low" in decision.reasons[-1]

    capped = _decision("low", ceiling="low")
    why = route_in_time(book, client, request, _doc(request, 1), capped)
    assert why is not None and "no tier can answer" in why and capped.tier == "low"
    # Waits are per class: a critical task's queue on low is short.
    _record(client, book, "low", "critical", wait=0.2, run=1.0)
    urgent = TaskRequest(prompt="x", deadline_s=10, sla="critical")
    assert route_in_time(book, client, urgent, _doc(urgent, 1), _decision("low")) is None


def _owe_now(store: TaskStore, *task_ids: str) -> None:
    """Make each task owed a republish now, in its shard's in-flight set."""
    for task_id in task_ids:
        store.redis.zadd(keys.inflight(keys.shard_of(task_id)), {task_id: 0})


def _submit(store: TaskStore, **extra: object) -> str:
    request = TaskRequest(prompt="hello", **extra)  # type: ignore[arg-type]
    return store.create(request, requeue_after_s=600).task_id


_claim = partial(claim_hop, expired_ttl_s=60)


def test_a_claim_past_the_deadline_ends_the_task_expired_and_counts_it(store: TaskStore) -> None:
    task_id = _submit(store, deadline_s=0.05)
    time.sleep(0.1)
    assert _claim(store, task_id).verdict == "terminal"
    result = store.get(task_id)
    assert result is not None and result.status == TaskStatus.expired and result.done
    assert result.error is not None and result.error.type == "expired"
    assert store.wait_done(task_id, 0.1)
    assert store.counters()["expired"] == 1 and store.counters()["expired_claim"] == 1
    assert _claim(store, task_id).verdict == "terminal"  # absorbing
    assert 0 < store.redis.ttl(keys.task(task_id)) <= 60


def test_a_claim_in_time_runs(store: TaskStore) -> None:
    assert _claim(store, _submit(store, deadline_s=60)).verdict == "claimed"


def test_the_reaper_expires_an_owed_hop_past_its_deadline_and_keeps_the_class_of_others(
    store: TaskStore,
) -> None:
    late = _submit(store, deadline_s=0.05, sla="batch")
    kept = _submit(store, sla="critical")
    _owe_now(store, late, kept)  # both owed a republish now
    time.sleep(0.1)
    owed = store.reap_due(requeue_after_s=30, expired_ttl_s=60)
    assert [(m.task_id, m.sla) for m in owed] == [(kept, "critical")]
    assert store.get(late).status == TaskStatus.expired  # type: ignore[union-attr]
    assert store.counters()["expired_reaper"] == 1


def test_the_reaper_counts_the_task_it_expires_on_its_own_metrics_once(store: TaskStore) -> None:
    from prometheus_client import REGISTRY

    from parjanya.worker.reaper import reap_once

    def expired_on(stage: str) -> float:
        sample = {"tier": stage, "status": "expired"}
        return REGISTRY.get_sample_value("parjanya_tasks_total", sample) or 0

    class Publisher:
        def __init__(self) -> None:
            self.sent: list[str] = []

        def publish(self, message: object) -> None:
            self.sent.append(str(message))

    late = _submit(store, deadline_s=0.05)
    _owe_now(store, late)
    time.sleep(0.1)
    before, publisher = expired_on("intake"), Publisher()
    assert reap_once(store, publisher, requeue_after_s=30, expired_ttl_s=60) == 0  # type: ignore[arg-type]
    assert expired_on("intake") - before == 1 and publisher.sent == []
    _owe_now(store, late)  # swept again: terminal, gone, not counted twice
    assert reap_once(store, publisher, requeue_after_s=30, expired_ttl_s=60) == 0  # type: ignore[arg-type]
    assert expired_on("intake") - before == 1


def test_a_worker_expires_a_held_task_with_its_reason(store: TaskStore) -> None:
    task_id = _submit(store, deadline_s=60)
    claim = _claim(store, task_id)
    assert claim.doc is not None
    assert expire(
        store,
        claim.doc,
        token=claim.token,
        hop=0,
        stage="intake",
        why="too late",
        where="route",
        ttl_s=60,
    )
    result = store.get(task_id)
    assert result is not None and result.status == TaskStatus.expired
    assert result.error is not None and result.error.message == "too late"
    assert store.counters()["expired_route"] == 1


@pytest.mark.parametrize("sla", ["critical", "batch"])
def test_a_new_task_is_queued_on_its_class_list(store: TaskStore, sla: str) -> None:
    from parjanya.app import create_app
    from parjanya.broker.envelope import HopEnvelopes
    from parjanya.config import ParjanyaConfig, Settings
    from parjanya.queues import INTAKE_QUEUE, class_list

    envelopes = HopEnvelopes(
        create_app(Settings(broker_url="redis://127.0.0.1:1/0"), ParjanyaConfig())
    )
    store.create(TaskRequest(prompt="x", sla=sla), requeue_after_s=600, enqueue=envelopes.for_hop)  # type: ignore[arg-type]
    assert store.redis.llen(class_list(INTAKE_QUEUE, sla)) == 1  # type: ignore[arg-type]


def _held_on_high(store: TaskStore, deadline_s: float) -> tuple[HopMessage, object]:
    task_id = _submit(store, deadline_s=deadline_s, sla="batch")
    intake = _claim(store, task_id)
    assert intake.doc is not None
    message = HopMessage(task_id=task_id, hop=1, stage="high", sla="batch")
    assert store.transition(intake.doc, token=intake.token, hop=1, stage="high", deadline_s=600)
    claim = store.claim(message, holding=TaskStatus.running, lease_ttl_s=30, max_deliveries=3)
    assert claim.verdict == "claimed"
    return message, claim


def test_a_tier_hop_past_its_deadline_expires_before_any_call(worker_ctx: WorkerContext) -> None:
    import asyncio

    from parjanya.tasks.tier import tier_hop

    # A deadline the claims beat even on a loaded machine, then waited out (e.g. in the backlog).
    message, claim = _held_on_high(worker_ctx.store, deadline_s=1.0)
    time.sleep(1.1)

    def no_provider(deployment: object) -> object:
        raise AssertionError("a provider was asked for")

    worker_ctx.provider = no_provider  # type: ignore[method-assign,assignment]
    asyncio.run(tier_hop(worker_ctx, message, claim))  # type: ignore[arg-type]
    result = worker_ctx.store.get(message.task_id)
    assert result is not None and result.status == TaskStatus.expired
    assert worker_ctx.store.counters()["expired_tier"] == 1


def test_escalation_does_not_start_a_hop_that_cannot_finish_in_time(
    worker_ctx: WorkerContext, fake_server: fakeredis.FakeServer
) -> None:
    import asyncio

    from parjanya.tasks.tier import _in_time

    worker_ctx.aredis = fakeredis.FakeAsyncRedis(server=fake_server)
    _, claim = _held_on_high(worker_ctx.store, deadline_s=30)

    async def check() -> bool:
        return await _in_time(worker_ctx, claim, "high")  # type: ignore[arg-type]

    assert asyncio.run(check())  # no samples yet: assumed to fit
    for _ in range(5):
        _record(worker_ctx.store.redis, worker_ctx.latency, "high", "batch", wait=40.0, run=2.0)  # type: ignore[arg-type]
    assert not asyncio.run(check())


def test_replay_requeues_a_dead_task_in_its_class(
    store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from parjanya.broker.publish import HopPublisher
    from parjanya.schema import ErrorInfo
    from parjanya.worker import deadletter

    task_id = _submit(store, sla="critical")
    claim = _claim(store, task_id)
    assert claim.doc is not None
    error = ErrorInfo(type="exhausted", message="every tier failed")
    assert deadletter.dead_letter(
        store, claim.doc, token=claim.token, hop=0, stage="intake", error=error
    )
    sent: list[HopMessage] = []
    monkeypatch.setattr(HopPublisher, "publish", lambda self, message: sent.append(message))
    publisher = HopPublisher(None)  # type: ignore[arg-type]
    outcome = deadletter.replay(store, publisher, task_id, max_replays=3, requeue_after_s=60)
    assert outcome.replayed and [(m.stage, m.sla) for m in sent] == [("intake", "critical")]
