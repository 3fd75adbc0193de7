"""The store's enqueue: a hop becomes owed in the store and reaches its queue, in one write if it can.

Every hop is first made owed in the store (a new task's record, or the transition to its next
hop), and only then queued. When the store and the broker are one Redis database, the store's
script pushes the hop's message itself (`broker.envelope` builds it): the record and the enqueue
are one atomic write, with no moment where a hop is owed but not queued. Otherwise the message is
published through kombu (`broker.publish`) right after the write; a publish lost in between is
republished by the reaper, since the store already says the hop is owed (docs/RELIABILITY.md,
"Outbox" and mode 6).

A new task whose publish fails is withdrawn (`TaskStore.uncreate`) and the error raised, so a
caller never holds an id for a half-made task; a record someone already picked up is not withdrawn,
and the reaper still owes it its publish.
"""

from __future__ import annotations

from collections.abc import Callable

from celery import Celery

from parjanya.broker.envelope import Enqueue, HopEnvelopes, shares_one_redis
from parjanya.broker.publish import HopPublisher
from parjanya.observe.tracing import ambient_traceparent
from parjanya.queues import SlaClass
from parjanya.schema import HopMessage, TaskRequest
from parjanya.store.creation import Created
from parjanya.store.tasks import TaskStore
from parjanya.store.verdicts import Committed


class Outbox:
    """Makes hops owed in the store and queued, for one Celery app and one store location."""

    def __init__(self, app: Celery, store_url: str) -> None:
        self.app = app
        self.publisher = HopPublisher(app)  # for a store apart from the broker
        self._envelopes = HopEnvelopes(app) if shares_one_redis(store_url, app) else None

    def message_for(self, message: HopMessage) -> Enqueue | None:
        """The message the store's script pushes itself, or None when it cannot (a store apart)."""
        return None if self._envelopes is None else self._envelopes.for_hop(message)

    def hand_off(
        self, message: HopMessage, commit: Callable[[Enqueue | None], Committed]
    ) -> Committed:
        """Run `commit` (a store write that makes `message` owed), then make sure it is queued.

        A commit that ended the task `cancelled` instead owes no hop, so nothing is published.
        """
        enqueue = self.message_for(message)
        committed = commit(enqueue)
        if committed == Committed.written and enqueue is None:
            self.publisher.publish(message)
        return committed

    def create(self, store: TaskStore, request: TaskRequest, *, requeue_after_s: float) -> Created:
        """Record a new task and queue its intake hop; a failed publish withdraws the record."""
        created = store.create(request, requeue_after_s=requeue_after_s, enqueue=self.message_for)
        self.publish_created(store, created, request)
        return created

    def publish_created(self, store: TaskStore, created: Created, request: TaskRequest) -> None:
        """Publish the intake hop of a task recorded without it (the store apart from the
        broker); if that fails, withdraw the record and raise."""
        try:
            self.publish_intake(created, request.sla.klass)
        except Exception:
            store.uncreate(created.task_id, request)
            raise

    def publish_intake(self, created: Created, sla: SlaClass) -> None:
        """Publish the intake hop of a task recorded without it, in its SLA class; on failure
        the record stays owed, for the reaper to republish."""
        if created.created and not created.enqueued:
            first = HopMessage(
                task_id=created.task_id,
                hop=0,
                stage="intake",
                sla=sla,
                traceparent=ambient_traceparent(),  # the producer's trace, when it has one
            )
            self.publisher.publish(first)
