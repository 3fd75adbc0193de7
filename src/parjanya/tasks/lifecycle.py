"""Worker start-up and shutdown hooks shared by every pool (Celery signals)."""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any

from celery import signals

from parjanya import keys
from parjanya.config import get_config, get_settings
from parjanya.store import TaskStore
from parjanya.tasks.dispatch import Dispatcher
from parjanya.tasks.reaper import Reaper

log = logging.getLogger("parjanya.worker")

_reaper: Reaper | None = None
_feeders: list[Any] = []


class VisibilityTimeoutMismatch(RuntimeError):
    pass


def check_visibility_timeout(store: TaskStore, ours: float) -> None:
    """Refuse to start with a visibility timeout other than the deployment's (RELIABILITY.md #4).

    The shortest timeout of any worker on the same Redis applies to every queue, because kombu's
    restore sweep is global: one pool with a short value makes long tasks of other pools run twice.
    """
    store.redis.set(keys.VISIBILITY_TIMEOUT, repr(float(ours)), nx=True)
    recorded = store.redis.get(keys.VISIBILITY_TIMEOUT)
    theirs = float(recorded) if recorded is not None else ours
    if theirs != float(ours):
        raise VisibilityTimeoutMismatch(
            f"this worker's visibility_timeout_s is {ours}, but workers on this broker use "
            f"{theirs}. Use one value everywhere (or delete {keys.VISIBILITY_TIMEOUT} after "
            "stopping every worker)."
        )


@signals.worker_init.connect
def _on_worker_init(sender: Any = None, **_: Any) -> None:
    config = get_config()
    store = TaskStore.from_url(get_settings().store_url)
    try:
        check_visibility_timeout(store, config.reliability.visibility_timeout_s)
    except VisibilityTimeoutMismatch as exc:
        # Celery logs and swallows exceptions from signal handlers; SystemExit is what stops it.
        log.critical("%s", exc)
        raise SystemExit(f"parjanya: refusing to start: {exc}") from exc


@signals.worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    global _reaper
    config = get_config()
    app = sender.app if sender is not None else None
    if app is None:
        return
    _reaper = Reaper(
        TaskStore.from_url(get_settings().store_url),
        app,
        interval_s=config.reliability.reaper_interval_s,
        requeue_after_s=config.reliability.requeue_after_s,
    )
    _reaper.start()
    log.info("reaper started (every %.1fs)", config.reliability.reaper_interval_s)
    _start_feeders(sender)
    _quiet_garbage_collector()


#: Objects allocated before a young collection: 10x CPython's 700 (see `_quiet_garbage_collector`).
YOUNG_GENERATION = 10_000


def _quiet_garbage_collector() -> None:
    """Keep full collections from stalling the event loop that carries hundreds of calls.

    A full collection walks every tracked object, and most of a worker's are from start-up
    (modules, Celery, config, pydantic schemas) and never garbage. At 500 calls in flight the
    collector held the GIL for 1.1 s out of 8.8 (six full collections of 130 ms, the rest young
    ones), and every answer waiting meanwhile was read late: 0.86 of ideal became 0.92
    (bench/inflight.py). `gc.freeze()` takes start-up objects out of every later collection, and
    a larger young generation promotes fewer short-lived hop objects (requests, responses, results)
    to where the full collections find them. Reference cycles are still collected; RSS did not
    move (120 MB).
    """
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION, *gc.get_threshold()[1:])


def _start_feeders(consumer: Any) -> None:
    """Batch admission for the queues this worker consumes.

    A tier queue is then the feeder's alone: Celery's consumer stops taking from it. Each message
    Celery delivers costs its per-message bookkeeping (the unacked record, a thread hand-off, the
    ack's round trip), and its thread takes the GIL from the event loop that carries the calls: at
    500 calls in flight it took a tenth of the hops at twice a feeder's cost (worker CPU per hop
    1.24 ms with it, 0.99 ms without; 0.89 -> 0.92 of ideal, medians of five, bench/inflight.py).
    The cancel is Celery's own remote-control `cancel_consumer`, and it outlives reconnections.
    The intake queue keeps both: there Celery's prefork children are the classifier's parallelism.
    """
    from parjanya.queues import INTAKE_QUEUE, TIERS, queue_for
    from parjanya.tasks.context import context
    from parjanya.tasks.feeder import QueueFeeder
    from parjanya.tasks.guard import launch, run_claimed
    from parjanya.tasks.intake import classify_hop
    from parjanya.tasks.tier import tier_hop

    ctx = context()
    batch = ctx.config.reliability.feeder_batch
    if batch == 0:
        return
    consumed = {q.name for q in getattr(consumer.task_consumer, "queues", [])}
    feeders = []
    if INTAKE_QUEUE in consumed:
        feeders.append(
            QueueFeeder(
                ctx, INTAKE_QUEUE, lambda c, m, cl: run_claimed(c, m, cl, classify_hop), batch=batch
            )
        )
    if ctx.config.reliability.tier_dispatch == "async":
        feeders += [
            QueueFeeder(
                ctx,
                queue_for(tier),
                lambda c, m, cl: launch(c, m, cl, tier_hop),
                batch=batch,
                dispatcher=ctx.dispatcher,
            )
            for tier in TIERS
            if queue_for(tier) in consumed
        ]
    for feeder in feeders:
        feeder.start()
        _feeders.append(feeder)
        log.info("batch feeder started on %s", feeder.queue)
        if feeder.dispatcher is not None:
            consumer.cancel_task_queue(feeder.queue)


def _started_dispatcher() -> Dispatcher | None:
    from parjanya.tasks.context import current_context

    ctx = current_context()
    return ctx.dispatcher if ctx is not None and "dispatcher" in ctx.__dict__ else None


def _stop_admitting() -> None:
    """Pop no more, and give back now the hops admitted but not started (idempotent)."""
    for feeder in _feeders:
        feeder.stop(wait=False)
    dispatcher = _started_dispatcher()
    if dispatcher is not None:
        dispatcher.close()


@signals.worker_shutting_down.connect
def _on_worker_shutting_down(**_: Any) -> None:
    """At the SIGTERM itself, not once Celery has wound down its consumer and pool: a hop waiting
    for a slot then goes to another worker at the reaper's next sweep. This runs in a signal
    handler, so the store writes of giving back run in a thread of their own."""
    threading.Thread(target=_stop_admitting, name="parjanya-stop-admitting", daemon=True).start()


@signals.worker_shutdown.connect
@signals.worker_process_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    """Let in-flight hops finish (bounded); whatever is left, the reaper recovers after its lease."""
    if _reaper is not None:
        _reaper.stop()
    _stop_admitting()
    dispatcher = _started_dispatcher()
    for feeder in _feeders:
        feeder.stop()
        log.info("batch feeder on %s admitted %d hops", feeder.queue, feeder.admitted)
    if dispatcher is not None:
        dispatcher.drain(timeout_s=30.0)
