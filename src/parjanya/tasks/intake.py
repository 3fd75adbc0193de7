"""The classifier hop: score the task, decide its tier, hand it to that tier's queue."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from parjanya import results
from parjanya.app import app
from parjanya.classify import RULES, PolicyRejection, Rule, classify
from parjanya.governance.budgets import tenant_cap, with_tenant_cap
from parjanya.queues import INTAKE_QUEUE, INTAKE_TASK
from parjanya.schema import Attempt, ErrorInfo, HopMessage, TaskStatus, utcnow
from parjanya.store import Claim
from parjanya.worker.admission import Admission
from parjanya.worker.context import WorkerContext, context
from parjanya.worker.guard import run_claimed

log = logging.getLogger(__name__)


def classify_hop(ctx: WorkerContext, message: HopMessage, claim: Claim) -> None:
    assert claim.request is not None and claim.doc is not None
    doc, hop = claim.doc, message.hop
    results.start_hop(doc, hop)
    started = utcnow()
    try:
        decision = classify(
            claim.request, ctx.config, ctx.scorer, _rules(ctx, claim.request.tenant)
        )
    except PolicyRejection as exc:
        results.record(
            doc,
            Attempt(
                hop=hop,
                stage="intake",
                outcome="rejected",
                error_type="policy",
                error=str(exc),
                started_at=started,
                finished_at=utcnow(),
            ),
        )
        results.end(doc, hop, TaskStatus.failed, ErrorInfo(type="policy", message=str(exc)))
        ctx.store.transition(
            doc,
            token=claim.token,
            hop=hop,
            stage="intake",
            ttl_s=ctx.config.reliability.result_ttl_s,
        )
        return
    doc.complexity = decision.complexity
    doc.routing = decision
    results.record(
        doc,
        Attempt(
            hop=hop,
            stage="intake",
            outcome="classified",
            tier=decision.tier,
            started_at=started,
            finished_at=utcnow(),
        ),
    )
    results.close_hop(doc, hop)
    following = HopMessage(task_id=doc.id, hop=hop + 1, stage=decision.tier)
    results.open_hop(doc, following.hop, following.stage)
    ctx.outbox.hand_off(
        following,
        lambda enqueue: ctx.store.transition(
            doc,
            token=claim.token,
            hop=following.hop,
            stage=following.stage,
            deadline_s=ctx.config.reliability.requeue_after_s,
            enqueue=enqueue,
        ),
    )


def _rules(ctx: WorkerContext, tenant: str | None) -> tuple[Rule, ...]:
    """The policy rules, with the tenant's budget cap; an unreadable standing caps nothing."""
    try:
        standing = ctx.spend.standing(tenant)
    except Exception:
        log.exception("tenant standing unavailable; routing without its budget cap")
        return RULES
    return with_tenant_cap(RULES, tenant_cap(standing, ctx.config.governance.budgets))


def intake_admission(ctx: WorkerContext, queue: str = INTAKE_QUEUE) -> Admission:
    """Classifier hops run in the thread that admitted them (a feeder's or Celery's)."""
    return Admission(
        ctx,
        queue,
        task_name=INTAKE_TASK,
        holding=TaskStatus.classifying,
        start=lambda c, m, cl: run_claimed(c, m, cl, classify_hop),
    )


@app.task(name=INTAKE_TASK, bind=True, typing=False)
def intake(self: Task[Any, Any], *args: Any, **kwargs: Any) -> str:
    queue = (self.request.delivery_info or {}).get("routing_key") or INTAKE_QUEUE
    return intake_admission(context(), queue).admit_args(args, kwargs)
