"""Admit hops in batches straight from a queue list, next to Celery's own consumer.

Celery hands a worker one message at a time, with per-message bookkeeping that costs about as much
as the work of a hop; on a 2-core machine one process admitted 170-350 messages a second that way,
short of the 500 a second that 500 one-second calls in flight need. A feeder pops up to `batch`
messages at once from the broker (a blocking pop when the list is empty, then RPOP with a count,
oldest first) and hands them to its queue's `Admission` (`worker/admission.py`), which decodes,
claims them in one pipelined round trip and starts each granted hop. A queue is the feeder's alone
once it starts, but for the intake queue of a prefork classifier, where Celery's consumer keeps
serving beside it (competing consumers) for its children (`tasks/lifecycle.py`). With
`feeder_batch: 0` Celery's consumer serves every queue, so a worker is complete without a feeder.

A queue is one list per SLA class; the feeder pops them by weight (`governance/priority.py`), so
critical hops overtake standard and standard overtake batch on a busy pool, and none starves.

Popping is acknowledging on receipt, which is safe for the same reason async dispatch is: the
store owns the hop. Until its claim, the hop is `queued` in the store's outbox with a deadline;
after it, the hop holds a lease. If this process dies at either point, the reaper republishes.

The loop never lets an exception end it: the admission is total, and anything else (the broker
unreachable) is logged and retried. `last_poll` says when the loop last came round (to pop, or
to find the dispatcher full: a busy pool is not a deaf one), for the liveness check
(`worker/liveness.py`), which also ends the process if the thread dies anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager

import redis

from parjanya.governance.priority import WeightedPop
from parjanya.queues import SlaClass
from parjanya.worker.admission import Admission
from parjanya.worker.feeder_thread import FeederThread, no_wait

log = logging.getLogger("parjanya.feeder")


class QueueFeeder(FeederThread):
    def __init__(
        self,
        broker: redis.Redis,
        admission: Admission,
        *,
        batch: int = 64,
        room: Callable[[int], int] = lambda batch: batch,
        admitting: Callable[[], AbstractContextManager[None]] = no_wait,
        idle_block_s: int = 1,
        weights: Mapping[SlaClass, int] | None = None,
    ) -> None:
        """`room(batch)` says how many hops may be popped now (a tier's dispatcher: its free
        slots and backlog), and `admitting()` wraps pop and claim, so that no hop is claimed
        beside one that runs alone (`worker/dispatch.py`)."""
        super().__init__(admission, "feeder")
        self.broker, self.batch = broker, batch
        self.room, self.admitting, self.idle_block_s = room, admitting, idle_block_s
        self.popper = WeightedPop(
            broker, self.queue, weights or admission.ctx.config.admission.class_weights
        )

    def round(self) -> None:
        self.step()

    def step(self) -> int:
        """One pass: pop what there is room for, admit it. Returns how many entries were popped."""
        room = self.room(self.batch)
        if room <= 0:
            self._stop.wait(0.01)
            return 0
        with self.admitting():  # popped hops are claimed before a lone hop may start
            raws = self._pop(room)
            if raws:
                self.admission.admit_raw(raws)
        return len(raws)

    def _pop(self, count: int) -> list[bytes]:
        # Idle, it blocks for the next message (Celery's consumer may win it; either is fine) and
        # runs it at once; whatever arrived with it is the next pop's batch.
        return self.popper.pop(count, idle_block_s=self.idle_block_s)
