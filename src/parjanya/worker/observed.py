"""Hop handlers as observers see them: told when a hop starts and how it ended.

`observed(handler)` and `observed_async(handler)` wrap a hop handler once (the intake and tier
admissions use them), so every hop is seen whoever delivered it (a feeder or Celery's consumer)
and however it runs (in a thread or on the event loop). The wrapper adds no branch to the hop: it
times the handler, reads the outcome from the task document the handler left (`outcome_of`), and
tells the context's observers (`WorkerContext.hops`); an exception is reported as outcome `error`
and raised on to the guard, which dead-letters the task as before.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from parjanya.observe.hops import HopEnd, HopStart, outcome_of
from parjanya.schema import HopMessage
from parjanya.store import Claim
from parjanya.worker.guard import AsyncHopHandler, HopHandler

if TYPE_CHECKING:
    from parjanya.worker.context import WorkerContext


def hop_start(message: HopMessage, claim: Claim) -> HopStart:
    tenant = None
    if claim.request is not None:
        tenant = claim.request.tenant
    if tenant is None and claim.doc is not None:
        tenant = claim.doc.tenant
    return HopStart(
        task_id=message.task_id,
        hop=message.hop,
        stage=message.stage,
        tenant=tenant,
        traceparent=message.traceparent,
    )


def _end(start: HopStart, claim: Claim, began: float) -> HopEnd:
    outcome, model = outcome_of(claim.doc, start.hop, start.stage)
    return HopEnd(start, outcome, (time.perf_counter() - began) * 1000.0, model)


def _failed(start: HopStart, exc: BaseException, began: float) -> HopEnd:
    ms = (time.perf_counter() - began) * 1000.0
    return HopEnd(start, "error", ms, error_type=type(exc).__name__)


def observed(handler: HopHandler) -> HopHandler:
    def run(ctx: WorkerContext, message: HopMessage, claim: Claim) -> None:
        start = hop_start(message, claim)
        ctx.hops.started(start)
        began = time.perf_counter()
        try:
            handler(ctx, message, claim)
        except BaseException as exc:
            ctx.hops.ended(_failed(start, exc, began))
            raise
        ctx.hops.ended(_end(start, claim, began))

    return run


def observed_async(handler: AsyncHopHandler) -> AsyncHopHandler:
    async def run(ctx: WorkerContext, message: HopMessage, claim: Claim) -> None:
        start = hop_start(message, claim)
        ctx.hops.started(start)
        began = time.perf_counter()
        try:
            await handler(ctx, message, claim)
        except BaseException as exc:
            ctx.hops.ended(_failed(start, exc, began))
            raise
        ctx.hops.ended(_end(start, claim, began))

    return run
