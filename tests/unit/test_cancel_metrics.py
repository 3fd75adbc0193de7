"""A task that ends `cancelled` at a worker's hop boundary is counted on that worker's /metrics,
once: where a claim ends it, where an escalation's commit ends it, where the classifier's route
ends it. A later claim of the ended task counts nothing more."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from parjanya import results
from parjanya.escalation import Escalate
from parjanya.queues import INTAKE_QUEUE, INTAKE_TASK, TIER_TASK, queue_for
from parjanya.resilience.fallback import TierCall
from parjanya.schema import HopMessage, TaskStatus
from parjanya.store import Claim, Committed, TaskStore
from parjanya.tasks.intake import classify_hop
from parjanya.tasks.tier import conclude
from parjanya.worker.admission import Admission
from parjanya.worker.context import WorkerContext

from .conftest import held_on_low, submit


def counted(stage: str, status: str = "cancelled") -> float:
    return REGISTRY.get_sample_value("parjanya_tasks_total", {"tier": stage, "status": status}) or 0


def escalations(from_tier: str) -> float:
    return sum(
        sample.value
        for family in REGISTRY.collect()
        if family.name == "parjanya_escalations"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels.get("from_tier") == from_tier
    )


class Started:
    def __init__(self) -> None:
        self.hops: list[HopMessage] = []

    def __call__(self, ctx: WorkerContext, message: HopMessage, claim: Claim) -> None:
        self.hops.append(message)


def test_the_store_says_when_a_transition_ended_the_task_cancelled(store: TaskStore) -> None:
    message, claim = held_on_low(store, "Cancel me at the boundary, store.")
    assert claim.doc is not None
    assert store.cancel(message.task_id, ttl_s=60) == "requested"
    results.open_hop(claim.doc, 2, "mid")
    committed = store.transition(claim.doc, token=claim.token, hop=2, stage="mid", deadline_s=60)
    assert committed == Committed.cancelled and committed  # still truthy: it landed
    again = store.transition(claim.doc, token=claim.token, hop=2, stage="mid", deadline_s=60)
    assert again == Committed.refused and not again
    ended = store.get(message.task_id)
    assert ended is not None and ended.status == TaskStatus.cancelled


def test_a_claim_that_ends_a_cancelled_task_is_counted_once_on_its_stage(
    worker_ctx: WorkerContext,
) -> None:
    message, claim = held_on_low(worker_ctx.store, "Cancel me while the worker dies.")
    assert worker_ctx.store.cancel(message.task_id, ttl_s=60) == "requested"
    assert worker_ctx.store.release(message.task_id, claim.token)  # its worker gave it back
    start = Started()
    low = Admission(
        worker_ctx, queue_for("low"), task_name=TIER_TASK, holding=TaskStatus.running, start=start
    )
    before = counted("low")

    assert low.admit_hops([message]) == 0
    assert counted("low") - before == 1
    ended = worker_ctx.store.get(message.task_id)
    assert ended is not None and ended.status == TaskStatus.cancelled

    assert low.admit_hops([message]) == 0  # a redelivered copy: terminal already, not counted
    assert counted("low") - before == 1 and start.hops == []


def test_an_escalation_of_a_cancelled_task_ends_it_counted_and_publishes_nothing(
    worker_ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    published: list[HopMessage] = []
    monkeypatch.setattr(worker_ctx.outbox.publisher, "publish", published.append)
    message, claim = held_on_low(worker_ctx.store, "Cancel me before I escalate.")
    assert worker_ctx.store.cancel(message.task_id, ttl_s=60) == "requested"
    before, moved, on_mid = counted("low"), escalations("low"), counted("mid")

    conclude(worker_ctx, message, claim, TierCall(), None, Escalate(to="mid", reason="failover"))

    assert counted("low") - before == 1
    assert escalations("low") == moved  # it never moved up
    assert published == []  # the store owes no hop of an ended task
    assert claim.doc is not None and claim.doc.status == TaskStatus.cancelled  # as observers see it
    ended = worker_ctx.store.get(message.task_id)
    assert ended is not None and ended.status == TaskStatus.cancelled
    assert worker_ctx.store.counters().get("escalations_failover", 0) == 0
    # The hop's message, were it published anyway, would be refused without a second count.
    late = Admission(
        worker_ctx,
        queue_for("mid"),
        task_name=TIER_TASK,
        holding=TaskStatus.running,
        start=Started(),
    )
    assert late.admit_hops([HopMessage(task_id=message.task_id, hop=2, stage="mid")]) == 0
    assert counted("low") - before == 1 and counted("mid") == on_mid


def test_a_route_of_a_task_cancelled_while_classified_is_counted_on_intake(
    worker_ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_ctx.outbox.publisher, "publish", lambda hop: None)
    task_id = submit(worker_ctx.store, "Cancel me while I am being classified.")
    message = HopMessage(task_id=task_id, hop=0, stage="intake")
    claim = worker_ctx.store.claim(
        message, holding=TaskStatus.classifying, lease_ttl_s=30, max_deliveries=3
    )
    assert worker_ctx.store.cancel(task_id, ttl_s=60) == "requested"
    before = counted("intake")

    classify_hop(worker_ctx, message, claim)

    assert counted("intake") - before == 1
    ended = worker_ctx.store.get(task_id)
    assert ended is not None and ended.status == TaskStatus.cancelled
    started = Started()
    intake = Admission(
        worker_ctx,
        INTAKE_QUEUE,
        task_name=INTAKE_TASK,
        holding=TaskStatus.classifying,
        start=started,
    )
    assert intake.admit_hops([message]) == 0 and started.hops == []
    assert counted("intake") - before == 1


def test_a_claim_past_the_deadline_is_counted_expired(worker_ctx: WorkerContext) -> None:
    import time

    from parjanya.schema import TaskRequest

    task_id = worker_ctx.store.create(
        TaskRequest(prompt="Expire me at the claim.", deadline_s=0.05), requeue_after_s=600
    ).task_id
    time.sleep(0.1)
    before = counted("intake", "expired")
    intake = Admission(
        worker_ctx,
        INTAKE_QUEUE,
        task_name=INTAKE_TASK,
        holding=TaskStatus.classifying,
        start=Started(),
    )
    assert intake.admit_hops([HopMessage(task_id=task_id, hop=0, stage="intake")]) == 0
    assert counted("intake", "expired") - before == 1
