"""The tier hop: call the tier's models, check the answer, then finish, escalate or dead-letter."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from celery import Task

from parjanya import results
from parjanya.app import app
from parjanya.broker.envelope import Enqueue
from parjanya.confidence import Confidence
from parjanya.config import Deployment
from parjanya.escalation import Escalate, Finish, GiveUp, decide
from parjanya.governance.consensus import Review, panel
from parjanya.governance.deadlines import expire, time_left
from parjanya.governance.scope import HopScope, Stop, hop_scope
from parjanya.providers import ChatRequest, ChatResponse
from parjanya.queues import TIER_TASK, SlaClass, Tier
from parjanya.resilience.cache import bypass_cache
from parjanya.resilience.fallback import TierCall, call_tier
from parjanya.schema import (
    ChatMessage,
    ErrorInfo,
    HopMessage,
    PriorAnswer,
    TaskRequest,
    TaskResult,
    TaskStatus,
)
from parjanya.store import Claim, Committed
from parjanya.worker import observe
from parjanya.worker.admission import Admission
from parjanya.worker.context import WorkerContext
from parjanya.worker.deadletter import dead_letter
from parjanya.worker.observed import observed_async
from parjanya.worker.persist import retrying, retrying_blocking
from parjanya.worker.process import process_of
from parjanya.worker.strategy import ADMIT_WAIT_S

log = logging.getLogger("parjanya.worker")


def chat_request_for(request: TaskRequest, messages: list[ChatMessage]) -> ChatRequest:
    """The provider request: the task's options around the messages its PII handling lets out."""
    return ChatRequest(
        messages=messages,
        max_tokens=request.max_output_tokens,
        temperature=request.temperature,
        response_format=request.response_format,
        logprobs=True,
        stop=request.stop,
        tools=request.tools,
        tool_choice=request.tool_choice,
    )


def _finish(
    doc: TaskResult, call: TierCall, response: ChatResponse, confidence: float, flagged: bool
) -> None:
    doc.output = response.text
    doc.tool_calls = list(response.tool_calls)
    doc.model = response.model
    doc.deployment = call.deployment.name if call.deployment else response.deployment
    doc.confidence = confidence
    doc.low_confidence = flagged
    doc.cached = call.cached or response.cached


async def tier_hop(ctx: WorkerContext, message: HopMessage, claim: Claim) -> None:
    """Call the tier (on the event loop), then judge the answer and commit the verdict.

    A finished hop, the common case, is committed on the loop in a batch with others (one round
    trip for many hops), retried through a store blip while the lease holds (`worker/persist.py`);
    escalating and dead-lettering block on the store, so they run in a thread.
    """
    assert claim.request is not None and claim.doc is not None and message.stage != "intake"
    tier: Tier = message.stage
    results.start_hop(claim.doc, message.hop)
    left = time_left(claim.request, claim.doc)
    if left is not None and left <= 0:  # waited out its deadline after the claim: no call
        await asyncio.to_thread(_expire, ctx, message, claim, "deadline_s passed before the call")
        return
    started = time.monotonic()
    scope = hop_scope(ctx.config, claim.request, claim.doc, tier)
    chat = chat_request_for(claim.request, scope.messages)
    with bypass_cache(not claim.request.cache), scope.active():
        call = await _call(ctx, tier, ctx.config.tiers[tier].deployments, chat, message.hop)
        review = await _review(ctx, claim.doc, scope, call, tier, chat, message.hop)
    if call.response is not None:
        call.response = scope.answer(call.response)
    verdict = None if call.response is None else await ctx.checker.acheck(chat, call.response)
    if verdict is not None:
        verdict = verdict.model_copy(
            update={"value": ctx.consensus.confidence(verdict.value, review)}
        )
    # The last model call (a judge's included) is made: what is left is bookkeeping, so this
    # hop's call slot may serve the next admitted hop meanwhile (`worker/dispatch.py`).
    ctx.dispatch.calls_over(ctx)
    _record_latency(ctx, message, claim, time.monotonic() - started)
    scope.account(call, tier, message.hop)
    # the review's calls go before the answer's: the last attempt is the one being judged
    call.attempts[:0] = [a for extra in review.calls for a in extra.attempts]
    confidence, decided = weigh_answer(ctx, message, claim, verdict, call)
    # Paid for whether or not the commit below lands, so counted now.
    ctx.hop_metrics.attempts(tier, claim.doc.tenant, call.attempts)
    # The calls' charges land before the task ends, so a caller who sees the result also sees what
    # it cost. Judging never yields, so a charge leaves at the first await after its call: here on
    # a quiet loop (0.3 ms of a task's 4.4 at p50), earlier when other hops yield meanwhile.
    await scope.purse.settled()
    if isinstance(decided, Escalate) and not await _in_time(ctx, claim, decided.to):
        if call.response is None:
            why = f"no time left for {decided.to} to answer before deadline_s"
            await asyncio.to_thread(_expire, ctx, message, claim, why)
            return
        decided = Finish(low_confidence=True)  # keep the weak answer: the better one is too late
    decision = scope.hold(decided, claim.doc, chat, ctx.config)
    if isinstance(decision, Finish):
        assert call.response is not None and confidence is not None
        doc = claim.doc
        _finish(doc, call, call.response, confidence, decision.low_confidence)
        results.end(doc, message.hop, TaskStatus.succeeded)
        commit = ctx.store.transition_call(
            doc,
            token=claim.token,
            hop=message.hop,
            stage=tier,
            ttl_s=ctx.config.reliability.result_ttl_s,
        )
        committed = await retrying(
            lambda: ctx.finishes(*commit), ctx.config.reliability.lease_ttl_s
        )
        if committed:  # the caller has its answer; outcome record and shadow run follow
            observe.ended(doc, tier)
            await ctx.learning.answered(claim.request, doc)
    else:
        await asyncio.to_thread(conclude, ctx, message, claim, call, confidence, decision)


async def _in_time(ctx: WorkerContext, claim: Claim, tier: Tier) -> bool:
    """Whether a hop on `tier` can still finish before the task's deadline (estimate unknown: yes)."""
    assert claim.request is not None and claim.doc is not None
    left = time_left(claim.request, claim.doc)
    if left is None:
        return True
    guess = await ctx.latency.aestimate(ctx.aredis, tier, claim.request.sla.klass)
    return left > 0 and (guess is None or guess <= left)


def _record_latency(ctx: WorkerContext, message: HopMessage, claim: Claim, run_s: float) -> None:
    """File this hop's run time and queue wait for deadline routing, without waiting for it: a
    sample that fails or lands late costs nothing, a round trip on every hop would."""
    assert claim.request is not None and claim.doc is not None and message.stage != "intake"
    timing = next((t for t in reversed(claim.doc.timings) if t.hop == message.hop), None)
    wait_s = timing.wait_s if timing is not None and timing.wait_s is not None else 0.0
    call = ctx.latency.record_call(message.stage, claim.request.sla.klass, wait_s, run_s)
    ctx.in_background(
        ctx.latency_records(*call), f"latency sample of hop {message.task_id}/{message.hop}"
    )


def _expire(ctx: WorkerContext, message: HopMessage, claim: Claim, why: str) -> None:
    assert claim.doc is not None
    if expire(
        ctx.store,
        claim.doc,
        token=claim.token,
        hop=message.hop,
        stage=message.stage,
        why=why,
        where="tier",
        ttl_s=ctx.config.reliability.result_ttl_s,
    ):
        observe.ended(claim.doc, message.stage)


async def _call(
    ctx: WorkerContext, tier: Tier, deployments: list[Deployment], chat: ChatRequest, hop: int
) -> TierCall:
    chain = ctx.chain(tier)
    return await call_tier(
        deployments,
        chat,
        providers=ctx.provider,
        retry=ctx.config.retry,
        hop=hop,
        tier=tier,
        middlewares=chain.middlewares,
        balancer=chain.balancer,
        stale_lookup=chain.stale_lookup,
        disabled=chain.disabled,
        context=ctx.config.context,
    )


async def _review(
    ctx: WorkerContext,
    doc: TaskResult,
    scope: HopScope,
    call: TierCall,
    tier: Tier,
    chat: ChatRequest,
    hop: int,
) -> Review:
    """High stakes: more deployments answer in parallel (`governance/consensus.py`)."""
    if call.response is None or not ctx.consensus.applies(doc.complexity):
        return Review()
    others = panel(
        ctx.config,
        tier,
        doc.routing.max_tier if doc.routing else tier,
        call.deployment.name if call.deployment else None,
        scope.needs,
        ctx.config.governance.consensus.answers - 1,
    )
    review = await ctx.consensus.review(call, others, lambda t, d: _call(ctx, t, [d], chat, hop))
    if review.note() and doc.routing is not None:
        doc.routing.reasons.append(str(review.note()))
    return review


def weigh_answer(
    ctx: WorkerContext,
    message: HopMessage,
    claim: Claim,
    verdict: Confidence | None,
    call: TierCall,
) -> tuple[float | None, Finish | Escalate | GiveUp]:
    """Record the call's attempts and the answer's score, and decide: finish, escalate or give up."""
    assert claim.doc is not None and message.stage != "intake"
    tier: Tier = message.stage
    doc = claim.doc
    threshold = ctx.config.tiers[tier].confidence_threshold
    results.record(doc, *call.attempts)
    doc.tier_path.append(tier)
    doc.truncated = call.truncation or doc.truncated
    confidence = None if verdict is None else verdict.value
    if confidence is not None and doc.attempts:
        doc.attempts[-1].confidence = confidence
        if confidence < threshold and doc.attempts[-1].outcome == "ok":
            doc.attempts[-1].outcome = "low_confidence"
    return confidence, decide(
        tier=tier,
        answered=call.response is not None,
        confidence=confidence,
        threshold=threshold,
        escalations=doc.escalations,
        max_escalations=ctx.config.routing.max_escalations,
        max_tier=doc.routing.max_tier if doc.routing else "high",
    )


def conclude(
    ctx: WorkerContext,
    message: HopMessage,
    claim: Claim,
    call: TierCall,
    confidence: float | None,
    decision: Escalate | GiveUp | Stop,
) -> None:
    """Escalate, dead-letter or stop for the budget: one compare-and-set in the store, then maybe
    a publish."""
    assert claim.doc is not None and message.stage != "intake"
    tier: Tier = message.stage
    doc, hop = claim.doc, message.hop
    match decision:
        case Escalate(to=higher, reason=reason):
            assert claim.request is not None
            sla = claim.request.sla.klass
            _escalate(ctx, doc, claim.token, hop, (tier, higher, sla), reason, call, confidence)
        case GiveUp(reason=why):
            last = call.errors[-1] if call.errors else None
            detail = f"{why}; last error: {last.error_type}: {last}" if last else why
            error = ErrorInfo(type=last.error_type if last else "exhausted", message=detail[:1000])
            dead_letter(
                ctx.store,
                doc,
                token=claim.token,
                hop=hop,
                stage=tier,
                error=error,
                within_s=ctx.config.reliability.lease_ttl_s,
            )
        case Stop(reason=why):
            results.end(
                doc, hop, TaskStatus.failed, ErrorInfo(type="budget_exhausted", message=why)
            )
            ctx.store.transition(
                doc,
                token=claim.token,
                hop=hop,
                stage=tier,
                ttl_s=ctx.config.reliability.result_ttl_s,
            )


def _escalate(
    ctx: WorkerContext,
    doc: TaskResult,
    token: str,
    hop: int,
    route: tuple[Tier, Tier, SlaClass],
    reason: str,
    call: TierCall,
    confidence: float | None,
) -> None:
    tier, higher, sla = route
    if reason == "low_confidence":
        assert call.response is not None and confidence is not None
        doc.escalations += 1
        doc.previous_answers.append(
            PriorAnswer(
                tier=tier,
                model=call.response.model,
                output=call.response.text,
                confidence=confidence,
            )
        )
    results.close_hop(doc, hop)
    results.charge(doc)
    following = HopMessage(
        task_id=doc.id, hop=hop + 1, stage=higher, sla=sla, traceparent=ctx.tracing.traceparent()
    )
    results.open_hop(doc, following.hop, following.stage)
    limits = ctx.config.reliability

    def commit(enqueue: Enqueue | None) -> Committed:
        # Retried through a store blip while the lease holds (`worker/persist.py`). A retry of a
        # write that landed is refused by the fence: with the store apart nothing is published
        # then, and the reaper republishes the owed hop after `requeue_after_s`.
        return retrying_blocking(
            lambda: ctx.store.transition(
                doc,
                token=token,
                hop=following.hop,
                stage=higher,
                deadline_s=limits.requeue_after_s,
                enqueue=enqueue,
            ),
            limits.lease_ttl_s,
        )

    committed = ctx.outbox.hand_off(following, commit)
    if committed == Committed.cancelled:  # cancelled while this hop ran: it ends here, on `tier`
        results.cancelled_at_boundary(doc)
        observe.ended(doc, tier)
    elif committed:
        ctx.store.count(f"escalations_{reason}")
        observe.escalated(tier, higher, reason)


#: The tier hop as observers see it (logs, Flower's task events; `worker/observed.py`).
observed_tier_hop = observed_async(tier_hop)


def tier_admission(ctx: WorkerContext, queue: str) -> Admission:
    """Tier hops start the way the worker's dispatch strategy says (`worker/strategy.py`)."""
    return Admission(
        ctx,
        queue,
        task_name=TIER_TASK,
        holding=TaskStatus.running,
        start=lambda c, m, cl: c.dispatch.start(c, m, cl, observed_tier_hop),
    )


# send_events=False: the hop's own events stand for it on Flower (worker/watch.py).
@app.task(name=TIER_TASK, bind=True, typing=False, send_events=False)
def tier_task(self: Task[Any, Any], *args: Any, **kwargs: Any) -> str:
    ctx = process_of(self.app).context()
    queue = (self.request.delivery_info or {}).get("routing_key") or TIER_TASK
    with ctx.dispatch.admitting(ctx, ADMIT_WAIT_S):
        return tier_admission(ctx, queue).admit_args(args, kwargs)
