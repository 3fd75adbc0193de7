"""Admit hops in batches straight from a queue list, next to Celery's own consumer.

Celery hands a worker one message at a time, with per-message bookkeeping that costs about as much
as the work of a hop; on a 2-core machine one process admitted 170-350 messages a second that way,
short of the 500 a second that 500 one-second calls in flight need. A feeder pops up to `batch`
messages at once (a blocking pop when the list is empty, then RPOP with a count, oldest first),
claims them in one pipelined round trip, and hands each granted hop to `run`: the tier feeder
launches it on the event loop, the intake feeder classifies it right there. On the intake queue
Celery's consumer keeps serving beside it (competing consumers); a tier queue is the feeder's alone
once it starts (`tasks/lifecycle.py`). With `feeder_batch: 0` Celery's consumer serves every queue,
so a worker is complete without a feeder.

Popping is acknowledging on receipt, which is safe for the same reason async dispatch is: the
store owns the hop. Until its claim, the hop is `queued` in the store's outbox with a deadline;
after it, the hop holds a lease. If this process dies at either point, the reaper republishes.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from pydantic import ValidationError

from parjanya.broker.poison import divert
from parjanya.queues import INTAKE_QUEUE, INTAKE_TASK, TIER_TASK
from parjanya.schema import HopMessage, TaskStatus
from parjanya.store import Claim
from parjanya.tasks.context import WorkerContext
from parjanya.tasks.dispatch import Dispatcher
from parjanya.tasks.guard import judge

log = logging.getLogger("parjanya.feeder")

#: Runs one claimed hop (its claim already judged 'run').
RunHop = Callable[[WorkerContext, HopMessage, Claim], None]


class UnknownTask(ValueError):
    """A well-formed task message for a task this queue does not serve."""


def decode_envelope(raw: bytes, task_name: str) -> HopMessage:
    """A kombu/Celery protocol-2 message on a Redis list -> the hop it carries (or ValueError)."""
    envelope = json.loads(raw)
    found = envelope.get("headers", {}).get("task")
    if found != task_name:
        raise UnknownTask(f"{found!r} on a queue that serves {task_name!r}")
    body: Any = envelope["body"]
    if envelope.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args, _kwargs, _embed = json.loads(body)
    return HopMessage.model_validate(args[0])


class QueueFeeder:
    def __init__(
        self,
        ctx: WorkerContext,
        queue: str,
        run: RunHop,
        *,
        batch: int = 64,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        """With a `dispatcher` (tier queues), pop only as many hops as it has room for (its slots
        and backlog), and claim nothing while a hop runs alone (`tasks/dispatch.py`)."""
        self.ctx, self.queue, self.run, self.batch = ctx, queue, run, batch
        self.task_name = INTAKE_TASK if queue == INTAKE_QUEUE else TIER_TASK
        self.holding = TaskStatus.classifying if queue == INTAKE_QUEUE else TaskStatus.running
        self.dispatcher = dispatcher
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"feeder-{queue}", daemon=True)
        self.admitted = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, *, wait: bool = True) -> None:
        self._stop.set()
        if wait:
            self._thread.join(timeout=5)

    def _room(self) -> int:
        return self.batch if self.dispatcher is None else min(self.batch, self.dispatcher.room)

    def _admitting(self) -> AbstractContextManager[None]:
        if self.dispatcher is None:
            return nullcontext()
        return self.dispatcher.admitting(timeout_s=1.0)

    def _loop(self) -> None:
        while not self._stop.is_set():
            room = self._room()
            if room <= 0:
                self._stop.wait(0.01)
                continue
            with self._admitting():  # popped hops are claimed before a lone hop may start
                try:
                    raws = self._pop(room)
                except Exception:
                    log.exception("feeder could not read %s; retrying", self.queue)
                    self._stop.wait(1.0)
                    continue
                if raws:
                    self._admit(raws)

    def _pop(self, count: int) -> list[bytes]:
        redis = self.ctx.store.redis
        raws: list[bytes] = redis.rpop(self.queue, count) or []  # type: ignore[assignment]
        if raws:
            return raws
        # Idle: block for the next message (Celery's consumer may win it; either is fine) and run
        # it at once; whatever arrived with it is the next RPOP's batch.
        popped = redis.brpop([self.queue], timeout=1)
        return [popped[1]] if popped else []  # type: ignore[list-item]

    def _admit(self, raws: list[bytes]) -> None:
        messages: list[HopMessage] = []
        for raw in raws:
            try:
                messages.append(decode_envelope(raw, self.task_name))
            except UnknownTask as exc:
                divert(self.queue, f"unknown task: {exc}", raw)
            except (ValueError, KeyError, TypeError, ValidationError) as exc:
                divert(self.queue, f"undecodable message: {exc}", raw)
        if not messages:
            return
        limits = self.ctx.config.reliability
        claims = self.ctx.store.claim_many(
            messages,
            holding=self.holding,
            lease_ttl_s=limits.lease_ttl_s,
            max_deliveries=limits.max_deliveries,
        )
        granted = [
            (message, claim)
            for message, claim in zip(messages, claims, strict=True)
            if judge(self.ctx, self.queue, message, claim) == "run"
        ]
        # Hops delivered more often go last: a suspect that must run alone (`tasks/dispatch.py`)
        # then waits for its batch-mates to finish instead of holding them claimed while it runs,
        # and any suspect after the first is given back by the dispatcher.
        granted.sort(key=lambda pair: pair[1].deliveries)
        for message, claim in granted:
            self.run(self.ctx, message, claim)
            self.admitted += 1
