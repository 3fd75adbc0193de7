"""The classifier hop: score the task, decide its tier, hand it to that tier's queue."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from parjanya import results
from parjanya.app import app
from parjanya.classify import RULES, PolicyRejection, Rule, classify
from parjanya.governance.budgets import tenant_cap, with_tenant_cap
from parjanya.governance.deadlines import expire, route_in_time
from parjanya.queues import INTAKE_QUEUE, INTAKE_TASK
from parjanya.schema import Attempt, ErrorInfo, HopMessage, TaskStatus, utcnow
from parjanya.store import Claim, Committed
from parjanya.worker import observe
from parjanya.worker.admission import Admission
from parjanya.worker.context import WorkerContext
from parjanya.worker.guard import run_claimed
from parjanya.worker.observed import observed
from parjanya.worker.process import process_of

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
        if ctx.store.transition(
            doc,
            token=claim.token,
            hop=hop,
            stage="intake",
            ttl_s=ctx.config.reliability.result_ttl_s,
        ):
            observe.ended(doc, "intake")
        return
    doc.complexity = decision.complexity
    doc.routing = decision
    late = route_in_time(ctx.latency, ctx.store.redis, claim.request, doc, decision)
    if late is not None:
        ttl = ctx.config.reliability.result_ttl_s
        if expire(
            ctx.store,
            doc,
            token=claim.token,
            hop=hop,
            stage="intake",
            why=late,
            where="route",
            ttl_s=ttl,
        ):
            observe.ended(doc, "intake")
        return
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
    following = HopMessage(
        task_id=doc.id,
        hop=hop + 1,
        stage=decision.tier,
        sla=claim.request.sla.klass,
        traceparent=ctx.tracing.traceparent(),
    )
    results.open_hop(doc, following.hop, following.stage)
    handed = ctx.outbox.hand_off(
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
    if handed:
        observe.classified(decision)
    if handed == Committed.cancelled:  # cancelled while it was classified: it ends here
        results.cancelled_at_boundary(doc)
        observe.ended(doc, "intake")


#: The classifier hop as observers see it (logs, Flower's task events; `worker/observed.py`).
observed_classify_hop = observed(classify_hop)


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
        start=lambda c, m, cl: run_claimed(c, m, cl, observed_classify_hop),
    )


# send_events=False: the hop's own events stand for it on Flower (worker/watch.py).
@app.task(name=INTAKE_TASK, bind=True, typing=False, send_events=False)
def intake(self: Task[Any, Any], *args: Any, **kwargs: Any) -> str:
    queue = (self.request.delivery_info or {}).get("routing_key") or INTAKE_QUEUE
    return intake_admission(process_of(self.app).context(), queue).admit_args(args, kwargs)
