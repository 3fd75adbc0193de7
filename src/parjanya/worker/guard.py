"""Running an admitted hop: under its lease, with every error turned into a verdict on the task.

`worker/admission.py` decides whether a hop runs; this module runs it. Two ways: `run_claimed` in
the calling thread (the classifier, blocking tier dispatch: the message is acknowledged after the
work), `launch` on the process's event loop (async tier dispatch; see `worker/dispatch.py` for why
that is safe and what it buys). Either way an exception in the handler dead-letters the task with
its history, except a lost store connection, which leaves the hop to its lease and the reaper.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import redis
from celery.exceptions import SoftTimeLimitExceeded

from parjanya.schema import ErrorInfo, HopMessage
from parjanya.store import Claim
from parjanya.worker.admission import give_up, hand_back, runs_alone

if TYPE_CHECKING:
    from parjanya.worker.context import WorkerContext

log = logging.getLogger("parjanya.worker")

HopHandler = Callable[["WorkerContext", HopMessage, Claim], None]
AsyncHopHandler = Callable[["WorkerContext", HopMessage, Claim], Coroutine[Any, Any, None]]


def failure(exc: BaseException, message: HopMessage) -> ErrorInfo | None:
    """What a handler's exception means for the task: a time limit, a bug (logged), or nothing.

    A lost connection to the store says nothing about the task: the hop is left to its lease,
    and the reaper republishes it once the lease lapses (docs/RELIABILITY.md mode 5). Dead-lettering
    it would turn a connection blip into a failed task.
    """
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        log.warning(
            "store unreachable during hop %s/%s; the reaper will retry it: %r",
            message.task_id,
            message.hop,
            exc,
        )
        return None
    if isinstance(exc, SoftTimeLimitExceeded | TimeoutError):
        return ErrorInfo(type="timeout", message="hop exceeded its time limit")
    log.exception("hop %s/%s failed", message.task_id, message.hop)
    return ErrorInfo(type="internal", message=repr(exc)[:500])


def run_claimed(ctx: WorkerContext, message: HopMessage, claim: Claim, handler: HopHandler) -> None:
    """Run a claimed hop in this thread under its lease; any error dead-letters it."""
    with ctx.leases.hold(message.task_id, claim.token):
        try:
            if ctx.before_hop is not None:
                ctx.before_hop(claim.request)
            handler(ctx, message, claim)
        except Exception as exc:
            error = failure(exc, message)
            if error is not None:
                give_up(ctx, message, claim, error)


def launch(ctx: WorkerContext, message: HopMessage, claim: Claim, handler: AsyncHopHandler) -> None:
    """Run a claimed hop on the event loop, under its lease and the hop time limit."""
    lease = ctx.leases.hold(message.task_id, claim.token).__enter__()
    time_limit = ctx.config.reliability.task_time_limit_s
    alone = runs_alone(ctx, claim)

    async def job() -> None:
        try:
            if ctx.before_hop is not None:
                ctx.before_hop(claim.request)
            async with asyncio.timeout(time_limit):
                await handler(ctx, message, claim)
        except Exception as exc:
            error = failure(exc, message)
            if error is not None:
                await asyncio.to_thread(give_up, ctx, message, claim, error)
        finally:
            lease.__exit__(None, None, None)

    if alone:
        log.warning(
            "hop %s/%s was in flight in %d workers that died; running it alone",
            message.task_id,
            message.hop,
            claim.deliveries - 1,
        )

    def give_back(reason: str) -> None:
        lease.__exit__(None, None, None)
        hand_back(ctx, message, claim, reason=reason)

    try:
        ctx.dispatcher.submit(job, give_back=give_back, alone=alone)
    except BaseException:
        lease.__exit__(None, None, None)  # the admission hands the hop back
        raise
