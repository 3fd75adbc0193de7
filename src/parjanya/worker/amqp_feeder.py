"""Admit hops in batches from a RabbitMQ queue, through kombu consumers of the feeder's own.

The Redis feeder (`worker/feeder.py`) pops up to a batch of list entries in one round trip.
RabbitMQ pushes instead: a queue is one quorum queue per SLA class (`broker/amqp.py`), and this
feeder holds one channel per class queue, each with a prefetch window of `amqp.feeder_prefetch`
unacked messages. It collects what the broker delivers into one buffer per class and admits what
the dispatcher has room for in one batch (`Admission.admit_hops`: one pipelined claim round
trip), just as a popped batch is, dealing the room among the classes by the same weighted turns
as the Redis feeder (`governance/priority.py`: 8 : 3 : 1, a class with nothing buffered giving
its turns to the others). Celery's consumer would hand the same hops over one at a time through
its admitting threads, with a prefetch of one per thread: at 500 one-second calls in flight that
is 500 deliveries, thread hand-offs and acks a second through four threads, which held one
process to a fraction of the in-flight target (bench/inflight.py --broker amqp://...).

A message is acknowledged only after its claim (the store owns the hop from then on), with one
`multiple` ack per class channel and batch; one that dies with the process before that is
redelivered by RabbitMQ, and one that is not a hop of this queue is recorded in the store and
rejected, which RabbitMQ dead-letters to `parjanya.dlq.<stage>` once (`broker.amqp`). The windows
bound what a slow or full process holds. At a stop (SIGTERM: `tasks/lifecycle.py`) the feeder
hands back every message it holds unclaimed at once, so a pool replacing this one can take them
while this one drains its calls. It hands each back **by copy**: published again to its class
queue (with a confirm), then acked. A reject with requeue would put it back at the head, but a
quorum queue counts every return toward `x-delivery-limit` (a reject-requeue and a channel closed
on unacked messages alike), so hops merely held during a few rolling restarts would be
dead-lettered as poison without ever having run. A copy starts at delivery count 0, at the tail
of its queue (the head's next consumer would likely be the next pool to stop anyway). When the
copy cannot be published (the connection is gone) the originals are left to the broker, which
requeues them, counted: a lost connection is a failure, not a stop.

The loop is total, like the Redis feeder's: a lost connection is logged and reopened, and
`last_poll` tells the liveness check (`worker/liveness.py`) that the loop still comes round.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, ExitStack, suppress
from typing import Any

import amqp
from celery import Celery
from kombu import Consumer, Queue

from parjanya.broker.amqp import Refusals, message_queue
from parjanya.broker.decode import Undecodable
from parjanya.governance.priority import WeightedTurns
from parjanya.queues import SLA_CLASSES, SlaClass
from parjanya.schema import HopMessage
from parjanya.worker.admission import Admission
from parjanya.worker.feeder_thread import FeederThread, no_wait

log = logging.getLogger("parjanya.feeder")

#: How long a stopping feeder waits for RabbitMQ to confirm one handed-back copy.
HAND_BACK_CONFIRM_S = 5.0
#: The header in which a quorum queue tells a consumer how often a message was returned.
DELIVERY_COUNT_HEADER = "x-delivery-count"


def handed_back(message: Any) -> amqp.Message:
    """A copy of a delivered message to publish again: its body and properties (its original
    `parjanya_sent_at` included), without the delivery count RabbitMQ added."""
    properties = dict(message.properties or {})
    headers = dict(properties.pop("application_headers", None) or {})
    headers.pop(DELIVERY_COUNT_HEADER, None)
    return amqp.Message(message.body, application_headers=headers, **properties)


#: The weights when none are given: every class alike (a worker passes `admission.class_weights`).
EVEN: dict[SlaClass, int] = dict.fromkeys(SLA_CLASSES, 1)


class AmqpFeeder(FeederThread):
    def __init__(
        self,
        app: Celery,
        queues: Mapping[SlaClass, Queue],
        admission: Admission,
        refusals: Refusals,
        *,
        batch: int = 64,
        prefetch: int = 128,
        room: Callable[[int], int] = lambda batch: batch,
        admitting: Callable[[], AbstractContextManager[None]] = no_wait,
        idle_wait_s: float = 1.0,
        weights: Mapping[SlaClass, int] = EVEN,
    ) -> None:
        """`queues`: the class queues of the admission's queue, by class (`broker/amqp.py`)."""
        super().__init__(admission, "amqp-feeder")
        self.app, self.class_queues = app, dict(queues)
        self.refusals, self.batch, self.prefetch = refusals, batch, prefetch
        self.room, self.admitting, self.idle_wait_s = room, admitting, idle_wait_s
        self.turns = WeightedTurns(weights)
        self._pending: dict[SlaClass, deque[Any]] = {sla: deque() for sla in self.class_queues}

    @property
    def pending(self) -> int:
        """Messages delivered and held unacked, every class together."""
        return sum(len(buffer) for buffer in self._pending.values())

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
            for buffer in self._pending.values():
                buffer.clear()  # unacked deliveries of a closed channel are redelivered
            try:
                with ExitStack() as consumers:
                    for sla, queue in self.class_queues.items():
                        consumers.enter_context(self._consumer(connection, sla, queue))
                    self._serve(connection)
            finally:
                # After the cancels, so nothing handed back is delivered here again.
                self._hand_back(connection)

    def _consumer(self, connection: Any, sla: SlaClass, queue: Queue) -> Consumer:
        """A consumer of one class queue, on a channel of its own: delivery tags count per
        channel, so a `multiple` ack of a class's oldest messages never covers another class's."""
        consumer = Consumer(
            connection.channel(),
            queues=[queue],
            on_message=self._pending[sla].append,
            accept=["json"],
            no_ack=False,
        )
        # Per consumer, not global: quorum queues refuse a global QoS.
        consumer.qos(prefetch_count=self.prefetch, apply_global=False)
        return consumer

    def _serve(self, connection: Any) -> None:
        while not self._stop.is_set():
            self.last_poll = time.monotonic()
            with suppress(TimeoutError):
                connection.drain_events(timeout=0.01 if self.pending else self.idle_wait_s)
            connection.heartbeat_check()  # sends ours; raises when the broker's stopped
            while self.pending and not self._stop.is_set():
                if self.step() == 0:
                    break
                self._drain_nowait(connection)

    def _drain_nowait(self, connection: Any) -> None:
        """Take in what has already arrived, so a batch is as full as the broker has it."""
        for _ in range(len(self._pending) * self.prefetch):  # the windows bound what can come
            try:
                connection.drain_events(timeout=0)
            except (TimeoutError, BlockingIOError):
                return

    def _hand_back(self, connection: Any) -> None:
        """Give back every message delivered but not claimed (a stop, or a failed round): a
        confirmed copy to its class queue, then an ack of the original; what cannot be copied is
        rejected with requeue (or, the channel gone, requeued by the broker already)."""
        held = [(sla, message) for sla, buffer in self._pending.items() for message in buffer]
        for buffer in self._pending.values():
            buffer.clear()
        if not held:
            return
        copied = 0
        try:
            channel = connection.channel()
            try:
                for sla, message in held:
                    channel.basic_publish_confirm(
                        handed_back(message),
                        exchange="",
                        routing_key=self.class_queues[sla].name,
                        confirm_timeout=HAND_BACK_CONFIRM_S,
                    )
                    message.ack()
                    copied += 1
            finally:
                with suppress(Exception):
                    channel.close()
        except Exception as exc:
            log.warning("could not copy held messages of %s back (%r): requeueing", self.queue, exc)
            for _, message in held[copied:]:
                try:
                    message.reject(requeue=True)
                except Exception:  # the channel is gone: the broker requeued it already
                    break
        log.info(
            "handed %d unclaimed messages of %s back to RabbitMQ (%d by copy)",
            len(held),
            self.queue,
            copied,
        )

    def step(self) -> int:
        """Admit what there is room for from the delivered messages, by the classes' weighted
        turns; how many were taken."""
        available = {sla: len(buffer) for sla, buffer in self._pending.items()}
        room = min(self.room(self.batch), sum(available.values()))
        if room <= 0:
            self._stop.wait(0.01)
            self.last_poll = time.monotonic()
            return 0
        hops: list[HopMessage] = []
        acks: list[Any] = []
        for sla, count in self.turns.take(room, available).items():
            last = None
            for _ in range(count):
                message = self._pending[sla].popleft()
                hop = self._hop(message)
                if hop is not None:
                    hops.append(hop)
                    last = message
            if last is not None:
                acks.append(last)
        with self.admitting():
            if hops:
                self.admission.admit_hops(hops)
        # Claimed (or judged): the store owns each hop from here. One frame per class channel:
        # every earlier delivery on it is acked here or was rejected above, and the ones still
        # pending were delivered later.
        for message in acks:
            message.ack(multiple=True)
        return room

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
