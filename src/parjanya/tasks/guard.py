"""The envelope around every hop: decode, claim, keep the lease, and never let an error escape.

Every task body is total (RELIABILITY.md mode 8): a message that does not decode is dead-lettered
raw; a hop that is terminal, stale or held elsewhere is acknowledged without work; a hop delivered
too often is dead-lettered without running; any exception in the handler dead-letters the task with
its history. Nothing here raises into Celery, so nothing is acked unrecorded or redelivered forever.

Two ways to run an admitted hop: `run_hop` runs it in the Celery thread (the classifier; the
message is acknowledged after the work), `dispatch_hop` hands it to the process's event loop (tier
pools; see `tasks/dispatch.py` for why that is safe and what it buys).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import ValidationError

from parjanya.broker.poison import divert
from parjanya.schema import ErrorInfo, HopMessage, TaskStatus
from parjanya.store import Claim
from parjanya.tasks import chaos
from parjanya.tasks.context import WorkerContext, context
from parjanya.tasks.deadletter import dead_letter

log = logging.getLogger("parjanya.worker")

HopHandler = Callable[[WorkerContext, HopMessage, Claim], None]
AsyncHopHandler = Callable[[WorkerContext, HopMessage, Claim], Awaitable[None]]


def _decode(args: tuple[Any, ...], kwargs: dict[str, Any]) -> HopMessage:
    payload = args[0] if len(args) == 1 and not kwargs else kwargs.get("message", kwargs)
    return HopMessage.model_validate(payload)


def admit(
    ctx: WorkerContext,
    queue: str | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    holding: TaskStatus,
) -> tuple[HopMessage, Claim] | str:
    """Decode and claim. Returns the hop to run, or the verdict (a string) when there is none."""
    try:
        message = _decode(args, kwargs)
    except ValidationError as exc:
        divert(
            queue,
            f"invalid hop message: {exc.errors(include_url=False)}",
            json.dumps({"args": args, "kwargs": kwargs}, default=repr),
        )
        return "poison"
    limits = ctx.config.reliability
    claim = ctx.store.claim(
        message,
        holding=holding,
        lease_ttl_s=limits.lease_ttl_s,
        max_deliveries=limits.max_deliveries,
    )
    verdict = judge(ctx, queue, message, claim)
    return (message, claim) if verdict == "run" else verdict


def judge(ctx: WorkerContext, queue: str | None, message: HopMessage, claim: Claim) -> str:
    """What a claim means: 'run', or why not (and the dead-lettering that goes with it)."""
    if claim.verdict == "missing":
        divert(queue, f"no task {message.task_id} in the store", message.model_dump_json())
        return "missing"
    if not claim.granted:
        log.info("hop %s/%s skipped: %s", message.task_id, message.hop, claim.verdict)
        return claim.verdict
    if claim.verdict == "poison":
        limit = ctx.config.reliability.max_deliveries
        error = ErrorInfo(
            type="poison",
            message=f"delivered {claim.deliveries} times without finishing "
            f"(limit {limit}); the worker may be dying on it",
        )
        give_up(ctx, message, claim, error)
        return "poison"
    return "run"


def give_up(ctx: WorkerContext, message: HopMessage, claim: Claim, error: ErrorInfo) -> None:
    # The handler may have added attempts to the claimed doc before failing: they are history too.
    assert claim.doc is not None
    dead_letter(
        ctx.store, claim.doc, token=claim.token, hop=message.hop, stage=message.stage, error=error
    )


def run_hop(
    queue: str | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    holding: TaskStatus,
    handler: HopHandler,
) -> str:
    """Run the hop in this thread, so the message is acknowledged after the work."""
    return _admit_then(
        queue, args, kwargs, holding, lambda c, m, cl: run_claimed(c, m, cl, handler), "done"
    )


def dispatch_hop(
    queue: str | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    holding: TaskStatus,
    handler: AsyncHopHandler,
) -> str:
    """Claim here, run on the event loop; blocks only while the process is at `max_inflight`."""
    with context().dispatcher.admitting(timeout_s=10.0):
        return _admit_then(
            queue, args, kwargs, holding, lambda c, m, cl: launch(c, m, cl, handler), "dispatched"
        )


def _admit_then(
    queue: str | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    holding: TaskStatus,
    start: Callable[[WorkerContext, HopMessage, Claim], None],
    started: str,
) -> str:
    """Returns what happened (for logs and tests): a claim verdict, or `started`."""
    ctx = context()
    admitted = admit(ctx, queue, args, kwargs, holding)
    if isinstance(admitted, str):
        return admitted
    start(ctx, *admitted)
    return started


def failure(exc: BaseException, message: HopMessage) -> ErrorInfo | None:
    """What a handler's exception means for the task: a time limit, a bug (logged), or nothing.

    A lost connection to the store says nothing about the task: the hop is left to its lease,
    and the reaper republishes it once the lease lapses (RELIABILITY.md mode 5). Dead-lettering
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
            chaos.die_if_marked(claim.request)
            handler(ctx, message, claim)
        except Exception as exc:
            error = failure(exc, message)
            if error is not None:
                give_up(ctx, message, claim, error)


def runs_alone(ctx: WorkerContext, claim: Claim) -> bool:
    """A hop already in flight in `isolate_after` workers that died may be what kills them."""
    return claim.deliveries > ctx.config.reliability.isolate_after


def launch(ctx: WorkerContext, message: HopMessage, claim: Claim, handler: AsyncHopHandler) -> None:
    """Run a claimed hop on the event loop, under its lease and the hop time limit."""
    lease = ctx.leases.hold(message.task_id, claim.token).__enter__()
    time_limit = ctx.config.reliability.task_time_limit_s
    alone = runs_alone(ctx, claim)

    async def job() -> None:
        try:
            chaos.die_if_marked(claim.request)
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

    ctx.dispatcher.submit(job, give_back=give_back, alone=alone)


def hand_back(ctx: WorkerContext, message: HopMessage, claim: Claim, *, reason: str) -> None:
    """Give a claimed hop that never started back to the store now, rather than after its lease."""
    try:
        ctx.store.release(message.task_id, claim.token)
    except Exception:
        log.warning("could not give hop %s back; its lease will lapse", message.task_id)
    else:
        log.info("hop %s/%s given back: %s", message.task_id, message.hop, reason)
