"""Which batch feeder serves a queue: one that pops Redis lists, or one that consumes RabbitMQ.

Both admit hops in batches through the queue's `Admission` and look the same to the worker's
start-up, shutdown and liveness check (`Feeder`); the broker's URL picks one here, once per
queue at start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from parjanya.broker.amqp import Refusals, is_amqp
from parjanya.queues import SLA_CLASSES, class_list
from parjanya.worker.admission import Admission, limits_of
from parjanya.worker.amqp_feeder import AmqpFeeder
from parjanya.worker.feeder import QueueFeeder
from parjanya.worker.feeder_thread import no_wait

if TYPE_CHECKING:
    from parjanya.worker.context import WorkerContext


class Feeder(Protocol):
    queue: str
    thread: threading.Thread

    @property
    def admitted(self) -> int: ...

    def start(self) -> None: ...

    def stop(self, *, wait: bool = True) -> None: ...

    def stopping(self) -> bool: ...

    def polled_at(self) -> float: ...


def build_feeder(
    ctx: WorkerContext,
    admission: Admission,
    *,
    batch: int,
    room: Callable[[int], int] = lambda wanted: wanted,
    admitting: Callable[[], AbstractContextManager[None]] = no_wait,
) -> Feeder:
    if is_amqp(ctx.settings.broker_url):
        declared = ctx.app.amqp.queues
        return AmqpFeeder(
            ctx.app,
            {sla: declared[class_list(admission.queue, sla)] for sla in SLA_CLASSES},
            admission,
            Refusals(limits_of(ctx)),
            batch=batch,
            # No more unacked per class than the pool can admit at once (its slots and backlog,
            # read at start while the dispatcher is empty): a window beyond that hoards hops that
            # idle pools, or a replacement started beside it, could be running. Each class has a
            # window of its own, so a flood of one class never keeps another's hops from view.
            prefetch=max(1, min(ctx.config.amqp.feeder_prefetch, room(1 << 30))),
            room=room,
            admitting=admitting,
            weights=ctx.config.admission.class_weights,
        )
    return QueueFeeder(
        ctx.broker,
        admission,
        batch=batch,
        room=room,
        admitting=admitting,
        weights=ctx.config.admission.class_weights,
    )
