"""Flower's view of this worker's hops: task events when the worker was started to send them.

Celery's Events bootstep sends task events only with `-E` (`parjanya worker --events`,
`worker_send_task_events`); without it its dispatcher is limited to the `worker` group
(heartbeats). The hop path follows the same switch, read once at `worker_ready`: with task events
on, a `TaskEvents` observer joins the context's hop observers (in the worker process, and in each
prefork child, which runs the classifier hops Celery's consumer delivers); with them off, nothing
is built and a hop costs no more than before. Celery's own events for the `parjanya.intake` and
`parjanya.tier` tasks are off (`send_events=False`): they would describe a message's admission
under the message id, a second entry beside the hop's own.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from parjanya.observe.task_events import TaskEvents

if TYPE_CHECKING:
    from parjanya.worker.context import WorkerContext

log = logging.getLogger("parjanya.worker")


def sends_task_events(consumer: Any) -> bool:
    """Whether this worker's Celery sends task events (it was started with `-E`)."""
    dispatcher = getattr(consumer, "event_dispatcher", None)
    if dispatcher is None or not dispatcher.enabled:
        return False
    groups = dispatcher.groups
    return not groups or "task" in groups


def watch_child_hops(ctx: WorkerContext, hostname: str) -> TaskEvents:
    """In a prefork child (the classifier's) of a worker that sends task events: the hops this
    child runs for Celery's consumer are sent too, under the worker's name."""
    events = TaskEvents.for_worker(ctx.app, hostname).start()
    ctx.hops.add(events)
    return events


def watch_hops(ctx: WorkerContext, consumer: Any) -> TaskEvents | None:
    """Start sending this process's hops as task events, when the worker sends task events."""
    if not sends_task_events(consumer):
        log.info("task events off: hops are logged, not sent to Flower (start with --events)")
        return None
    events = TaskEvents.for_worker(ctx.app, consumer.hostname).start()
    ctx.hops.add(events)
    log.info("task events on: every hop is sent to Flower as %s", consumer.hostname)
    return events
