"""Worker start-up and shutdown hooks shared by every pool (Celery signals).

Celery's signals take no arguments of ours, so what a worker starts (reaper, feeders, liveness
monitor, webhook sender) is kept in the `Running` record of its app's `WorkerProcess`
(`worker/process.py`), filled at `worker_ready` and emptied at shutdown. The app is the signal's
sender's where it has one, else the one Celery app (`parjanya.app`); this module keeps nothing.
"""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any

import redis
from celery import signals

from parjanya import keys
from parjanya.app import app as default_app
from parjanya.broker import amqp
from parjanya.config import get_config, get_settings
from parjanya.connect import is_redis, redis_client
from parjanya.webhooks.sender import WebhookSender
from parjanya.worker.context import WorkerContext
from parjanya.worker.dispatch import Dispatcher
from parjanya.worker.feeding import build_feeder
from parjanya.worker.liveness import (
    PRUNE_AFTER,
    Liveness,
    Watched,
    default_dir,
    default_path,
    exit_deaf,
    prune,
)
from parjanya.worker.process import Running, WorkerProcess, process_of
from parjanya.worker.reaper import Reaper
from parjanya.worker.topology import Unservable, check_topology, describe
from parjanya.worker.watch import watch_child_hops, watch_hops

log = logging.getLogger("parjanya.worker")


def _process(sender: Any) -> WorkerProcess:
    """The worker state of the sender's app, or of the one Celery app (a hostname sends some)."""
    return process_of(getattr(sender, "app", None) or default_app)


class VisibilityTimeoutMismatch(RuntimeError):
    pass


def check_visibility_timeout(broker: redis.Redis, ours: float) -> None:
    """Refuse to start with a visibility timeout other than the deployment's (docs/RELIABILITY.md #4).

    The shortest timeout of any worker on the same broker applies to every queue, because kombu's
    restore sweep is global: one pool with a short value makes long tasks of other pools run twice.
    So the value is recorded on the broker the workers share (`_on_worker_init` passes the store
    instead when the broker is not Redis).
    """
    broker.set(keys.VISIBILITY_TIMEOUT, repr(float(ours)), nx=True)
    recorded = broker.get(keys.VISIBILITY_TIMEOUT)
    theirs = float(recorded) if recorded is not None else ours
    if theirs != float(ours):
        raise VisibilityTimeoutMismatch(
            f"this worker's visibility_timeout_s is {ours}, but workers on this broker use "
            f"{theirs}. Use one value everywhere (or delete {keys.VISIBILITY_TIMEOUT} after "
            "stopping every worker)."
        )


@signals.worker_init.connect
def _on_worker_init(sender: Any = None, **_: Any) -> None:
    settings, config = get_settings(), get_config()
    try:
        check_topology(settings, config)
        # Recorded where the workers share it: the broker, unless the broker is not Redis.
        shared = settings.broker_url if is_redis(settings.broker_url) else settings.store_url
        check_visibility_timeout(
            redis_client(shared, socket_timeout=None),
            config.reliability.visibility_timeout_s,
        )
    except (Unservable, VisibilityTimeoutMismatch) as exc:
        # Celery logs and swallows exceptions from signal handlers; SystemExit is what stops it.
        log.critical("%s", exc)
        raise SystemExit(f"parjanya: refusing to start: {exc}") from exc
    log.info("%s", describe(settings))
    _process(sender).running.children_send_events = bool(getattr(sender, "task_events", False))


@signals.worker_process_init.connect
def _on_worker_process_init(sender: Any = None, **_: Any) -> None:
    """A prefork child (the classifier's) reports the hops it runs, when its worker sends events."""
    process = _process(sender)
    if process.running.children_send_events and sender:
        process.running.task_events = watch_child_hops(process.context(), str(sender))


@signals.worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    app = sender.app if sender is not None else None
    if app is None:
        return
    process = process_of(app)
    running, ctx = process.running, process.context()
    try:
        amqp.prepare(app, ctx.config.amqp)  # RabbitMQ: dead-letter queues exist before any reject
    except amqp.QuorumUnsupported as exc:
        log.critical("%s", exc)
        raise SystemExit(f"parjanya: refusing to start: {exc}") from exc
    limits = ctx.config.reliability
    running.reaper = Reaper(
        ctx.store,
        app,
        interval_s=limits.reaper_interval_s,
        requeue_after_s=limits.requeue_after_s,
        lease_ttl_s=limits.lease_ttl_s,
        expired_ttl_s=limits.result_ttl_s,
    )
    running.reaper.start()
    log.info("reaper started (every %.1fs)", limits.reaper_interval_s)
    running.task_events = watch_hops(ctx, sender)  # before the feeders: every hop is seen
    _start_feeders(running, ctx, sender)
    # Every worker sends owed result callbacks; the outbox's leases keep them from doubling up.
    running.webhooks = WebhookSender(ctx.settings.store_url, ctx.config.webhooks).start()
    _start_liveness(process, ctx)
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


def _start_feeders(running: Running, ctx: WorkerContext, consumer: Any) -> None:
    """Batch admission for the queues this worker consumes.

    A tier queue is then the feeder's alone: Celery's consumer stops taking from it. Each message
    Celery delivers costs its per-message bookkeeping (the unacked record, a thread hand-off, the
    ack's round trip), and its thread takes the GIL from the event loop that carries the calls: at
    500 calls in flight it took a tenth of the hops at twice a feeder's cost (worker CPU per hop
    1.24 ms with it, 0.99 ms without; 0.89 -> 0.92 of ideal, medians of five, bench/inflight.py).
    The cancel is Celery's own remote-control `cancel_consumer`, and it outlives reconnections;
    the worker still reports the queue as its own (`broker/consumer.py`: `active_queues`).
    The intake queue keeps both only under Celery's prefork pool, whose children are the
    classifier's parallelism. In a threads or solo pool Celery's consumer on intake added no
    parallelism (classifying holds the GIL), only a second, slower way in: kombu's ack emulation
    costs a round trip before the task runs and one after, and the thread hand-off another
    ~0.1 ms. Idle, the two took turns with every message, and a task Celery's consumer took
    finished 0.53 ms later at p50 (4.80 against 4.25 ms, `bench/pipeline.py`'s single tasks).
    There the feeder now takes intake alone, as it takes a tier queue.
    Feeders read the broker (Redis lists, or RabbitMQ through a consumer of their own:
    `worker/feeding.py`), never the store's client: the two may be apart.
    """
    from parjanya.queues import INTAKE_QUEUE, TIERS, queue_for
    from parjanya.tasks.intake import intake_admission
    from parjanya.tasks.tier import tier_admission

    batch = ctx.config.reliability.feeder_batch
    if batch == 0:
        return
    consumed = {q.name for q in getattr(consumer.task_consumer, "queues", [])}
    shared = {INTAKE_QUEUE} if forks(consumer.pool) else set()  # served by Celery's pool too
    feeders = []
    if INTAKE_QUEUE in consumed:
        feeders.append(build_feeder(ctx, intake_admission(ctx), batch=batch))
    if ctx.dispatch.feeds_tier_queues:
        feeders += [
            build_feeder(
                ctx,
                tier_admission(ctx, queue_for(tier)),
                batch=batch,
                room=lambda wanted: ctx.dispatch.room(ctx, wanted),
                admitting=lambda: ctx.dispatch.admitting(ctx, 1.0),
            )
            for tier in TIERS
            if queue_for(tier) in consumed
        ]
    for feeder in feeders:
        feeder.start()
        running.feeders.append(feeder)
        log.info("batch feeder started on %s", feeder.queue)
        if feeder.queue not in shared:
            consumer.hand_to_feeder(feeder.queue)  # still reported in `active_queues`


def forks(pool: object) -> bool:
    """Whether Celery's pool runs tasks in child processes (prefork), beside this one's threads."""
    from celery.concurrency.prefork import TaskPool as PreforkPool

    return isinstance(pool, PreforkPool)


def _start_liveness(process: WorkerProcess, ctx: WorkerContext) -> None:
    """Watch the threads this worker cannot serve without (`worker/liveness.py`)."""
    running = process.running
    stale_s = ctx.config.reliability.liveness_stale_s
    prune(default_dir(ctx.settings.data_dir), PRUNE_AFTER * stale_s)  # kill -9'd workers' files
    path = ctx.settings.liveness_file or default_path(ctx.settings.data_dir)
    liveness = Liveness(path, stale_s, on_dead=lambda reason: _deaf(process, reason))
    for feeder in running.feeders:
        liveness.watch(
            Watched(
                f"feeder {feeder.queue}",
                feeder.thread,
                polled=feeder.polled_at,
                stopping=feeder.stopping,
            )
        )
    leases = ctx.leases
    liveness.watch(Watched("lease renewer", leases.thread, stopping=leases.stopping))
    liveness.start()
    running.liveness = liveness
    log.info("liveness heartbeat at %s", path)


def _deaf(process: WorkerProcess, reason: str) -> None:
    """A thread this worker needs is gone: stop admitting and exit non-zero for a restart."""
    _stop_admitting(process)
    exit_deaf(reason, process.deaf)


def _started_dispatcher(process: WorkerProcess) -> Dispatcher | None:
    ctx = process.current()
    return ctx.dispatcher if ctx is not None and "dispatcher" in ctx.__dict__ else None


def _stop_admitting(process: WorkerProcess) -> None:
    """Pop no more, and give back now the hops admitted but not started (idempotent)."""
    for feeder in process.running.feeders:
        feeder.stop(wait=False)
    dispatcher = _started_dispatcher(process)
    if dispatcher is not None:
        dispatcher.close()


@signals.worker_shutting_down.connect
def _on_worker_shutting_down(sender: Any = None, **_: Any) -> None:
    """At the SIGTERM itself, not once Celery has wound down its consumer and pool: a hop waiting
    for a slot then goes to another worker at the reaper's next sweep. This runs in a signal
    handler, so the store writes of giving back run in a thread of their own."""
    threading.Thread(
        target=_stop_admitting,
        args=(_process(sender),),
        name="parjanya-stop-admitting",
        daemon=True,
    ).start()


@signals.worker_shutdown.connect
@signals.worker_process_shutdown.connect
def _on_worker_shutdown(sender: Any = None, **_: Any) -> None:
    """Let in-flight hops finish (bounded); whatever is left, the reaper recovers after its lease."""
    process = _process(sender)
    running = process.running
    if running.liveness is not None:
        running.liveness.stop()
    if running.reaper is not None:
        running.reaper.stop()
    if running.webhooks is not None:
        running.webhooks.stop()
    _stop_admitting(process)
    dispatcher = _started_dispatcher(process)
    for feeder in running.feeders:
        feeder.stop()
        log.info("batch feeder on %s admitted %d hops", feeder.queue, feeder.admitted)
    if dispatcher is not None:
        dispatcher.drain(timeout_s=30.0)
    if running.task_events is not None:
        running.task_events.stop()  # after the drain: the last hops' events go out too
        running.task_events = None
