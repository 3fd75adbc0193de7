"""Admit hops in batches from a RabbitMQ queue, through a kombu consumer of the feeder's own.

The Redis feeder (`worker/feeder.py`) pops up to a batch of list entries in one round trip.
RabbitMQ pushes instead: this feeder holds one channel with a prefetch window of
`amqp.feeder_prefetch` unacked messages, collects what the broker delivers, and admits what the
dispatcher has room for in one batch (`Admission.admit_hops`: one pipelined claim round trip),
just as a popped batch is. Celery's consumer would hand the same hops over one at a time through
its admitting threads, with a prefetch of one per thread: at 500 one-second calls in flight that
is 500 deliveries, thread hand-offs and acks a second through four threads, which held one
process to a fraction of the in-flight target (bench/inflight.py --broker amqp://...).

A message is acknowledged only after its claim (the store owns the hop from then on); one that
dies with the process before that is redelivered by RabbitMQ, and one that is not a hop of this
queue is recorded in the store and rejected, which RabbitMQ dead-letters to `parjanya.dlq.<stage>`
once (`broker.amqp`). The prefetch window bounds what a slow or full process holds.

The loop is total, like the Redis feeder's: a lost connection is logged and reopened, and
`last_poll` tells the liveness check (`worker/liveness.py`) that the loop still comes round.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from typing import Any

from celery import Celery
from kombu import Consumer, Queue

from parjanya.broker.amqp import Refusals, message_queue
from parjanya.broker.decode import Undecodable
from parjanya.schema import HopMessage
from parjanya.worker.admission import Admission
from parjanya.worker.feeder_thread import FeederThread, no_wait

log = logging.getLogger("parjanya.feeder")


class AmqpFeeder(FeederThread):
    def __init__(
        self,
        app: Celery,
        queue: Queue,
        admission: Admission,
        refusals: Refusals,
        *,
        batch: int = 64,
        prefetch: int = 128,
        room: Callable[[int], int] = lambda batch: batch,
        admitting: Callable[[], AbstractContextManager[None]] = no_wait,
        idle_wait_s: float = 1.0,
    ) -> None:
        super().__init__(admission, "amqp-feeder")
        self.app, self.amqp_queue = app, queue
        self.refusals, self.batch, self.prefetch = refusals, batch, prefetch
        self.room, self.admitting, self.idle_wait_s = room, admitting, idle_wait_s
        self._pending: deque[Any] = deque()

    def round(self) -> None:
        """One connection's life (a failed one is reopened by the next round)."""
        self._consume()

    def _consume(self) -> None:
        """One connection's life: consume until stopped or the connection fails."""
        # Heartbeats as Celery's own consumer has them (`broker_heartbeat`): a broker that went
        # silent (a partition, a half-open socket) is noticed and the connection reopened, instead
        # of the feeder polling a dead socket while its liveness looks fine.
        heartbeat = float(self.app.conf.broker_heartbeat or 0)
        with self.app.connection_for_read(heartbeat=heartbeat) as connection:
            connection.ensure_connection(max_retries=3)
            consumer = Consumer(
                connection.channel(),
                queues=[self.amqp_queue],
                on_message=self._pending.append,
                accept=["json"],
                no_ack=False,
            )
            # Per consumer, not global: quorum queues refuse a global QoS.
            consumer.qos(prefetch_count=self.prefetch, apply_global=False)
            self._pending.clear()  # unacked deliveries of a closed channel are redelivered
            with consumer:
                while not self._stop.is_set():
                    self.last_poll = time.monotonic()
                    with suppress(TimeoutError):
                        connection.drain_events(timeout=0.01 if self._pending else self.idle_wait_s)
                    connection.heartbeat_check()  # sends ours; raises when the broker's stopped
                    while self._pending and not self._stop.is_set():
                        if self.step() == 0:
                            break
                        self._drain_nowait(connection)

    def _drain_nowait(self, connection: Any) -> None:
        """Take in what has already arrived, so a batch is as full as the broker has it."""
        while len(self._pending) < self.prefetch:
            try:
                connection.drain_events(timeout=0)
            except (TimeoutError, BlockingIOError):
                return

    def step(self) -> int:
        """Admit what there is room for from the delivered messages; how many were taken."""
        room = min(self.room(self.batch), len(self._pending))
        if room <= 0:
            self._stop.wait(0.01)
            self.last_poll = time.monotonic()
            return 0
        taken = [self._pending.popleft() for _ in range(room)]
        hops: list[HopMessage] = []
        acks: list[Any] = []
        for message in taken:
            hop = self._hop(message)
            if hop is not None:
                hops.append(hop)
                acks.append(message)
        with self.admitting():
            if hops:
                self.admission.admit_hops(hops)
        if acks:  # claimed (or judged): the store owns each hop from here
            # One frame for the batch: every earlier delivery on this channel is acked here or
            # was rejected above, and the ones still pending were delivered later.
            acks[-1].ack(multiple=True)
        return len(taken)

    def _hop(self, message: Any) -> HopMessage | None:
        """The hop, or None once a message that is not one is recorded and rejected."""
        try:
            hop = self.refusals.hop(message, self.queue)
            if hop is not None:
                return hop
            reason = f"not a Parjanya work queue: {message_queue(message)!r}"
        except Undecodable as exc:
            reason = exc.reason
        except Exception as exc:  # total: whatever the check did, the message is recorded
            reason = f"undecodable message ({type(exc).__name__})"
        self.admission.ctx.dead_letters.divert(self.queue, reason, message.body)
        try:
            message.reject(requeue=False)  # RabbitMQ dead-letters it to parjanya.dlq.<stage>
        except Exception:
            log.exception("could not reject a poison message on %s", self.queue)
        return None
