"""How a tier pool runs its hops, decided once at worker start from `reliability.tier_dispatch`.

The rest of the runtime asks the strategy instead of comparing the mode: Celery's tier task, the
lifecycle hooks that start feeders, and `parjanya worker` (how many Celery threads, and whether
`-c` means calls in flight). A new mode is a new class here and one entry in `STRATEGIES`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Protocol

from parjanya.config import ReliabilityConfig
from parjanya.schema import HopMessage
from parjanya.store import Claim
from parjanya.worker.guard import AsyncHopHandler, launch, run_claimed

if TYPE_CHECKING:
    from parjanya.worker.context import WorkerContext

#: How long a Celery thread waits to admit while a hop runs alone (`worker/dispatch.py`).
ADMIT_WAIT_S = 10.0


class DispatchStrategy(Protocol):
    #: Whether batch feeders take the tier queues (and Celery's consumer lets go of them).
    feeds_tier_queues: bool
    #: Whether `parjanya worker -c N` sets calls in flight (True) or Celery threads (False).
    concurrency_is_inflight: bool

    def celery_threads(self, concurrency: int | None, admitting_threads: int) -> int: ...

    def room(self, ctx: WorkerContext, batch: int) -> int:
        """How many tier hops a feeder may pop now."""
        ...

    def admitting(self, ctx: WorkerContext, timeout_s: float) -> AbstractContextManager[None]:
        """Wrap claiming, so no hop is claimed beside one that runs alone."""
        ...

    def start(
        self, ctx: WorkerContext, message: HopMessage, claim: Claim, handler: AsyncHopHandler
    ) -> None:
        """Run (or launch) a claimed tier hop."""
        ...

    def calls_over(self, ctx: WorkerContext) -> None:
        """The running tier hop has made its model calls: its slot may serve the next one."""
        ...


class AsyncDispatch:
    """Claim in a Celery thread or a feeder, run on the event loop: hundreds in flight."""

    feeds_tier_queues = True
    concurrency_is_inflight = True

    def celery_threads(self, concurrency: int | None, admitting_threads: int) -> int:
        return admitting_threads

    def room(self, ctx: WorkerContext, batch: int) -> int:
        return min(batch, ctx.dispatcher.room)

    def admitting(self, ctx: WorkerContext, timeout_s: float) -> AbstractContextManager[None]:
        return ctx.dispatcher.admitting(timeout_s=timeout_s)

    def start(
        self, ctx: WorkerContext, message: HopMessage, claim: Claim, handler: AsyncHopHandler
    ) -> None:
        launch(ctx, message, claim, handler)

    def calls_over(self, ctx: WorkerContext) -> None:
        ctx.dispatcher.calls_over()


class BlockingDispatch:
    """One hop per Celery thread, acknowledged after the call; Celery's consumer feeds it."""

    feeds_tier_queues = False
    concurrency_is_inflight = False

    def celery_threads(self, concurrency: int | None, admitting_threads: int) -> int:
        return concurrency or 8

    def room(self, ctx: WorkerContext, batch: int) -> int:
        return batch

    def admitting(self, ctx: WorkerContext, timeout_s: float) -> AbstractContextManager[None]:
        return nullcontext()

    def start(
        self, ctx: WorkerContext, message: HopMessage, claim: Claim, handler: AsyncHopHandler
    ) -> None:
        run_claimed(ctx, message, claim, lambda c, m, cl: c.loop.run(handler(c, m, cl)))

    def calls_over(self, ctx: WorkerContext) -> None:
        return None  # a Celery thread per hop: its slot is the thread, held to the end


STRATEGIES: dict[str, DispatchStrategy] = {"async": AsyncDispatch(), "blocking": BlockingDispatch()}


def strategy_for(reliability: ReliabilityConfig) -> DispatchStrategy:
    return STRATEGIES[reliability.tier_dispatch]
