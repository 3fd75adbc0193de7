"""The producer SDK: submit a task, get its id at once, read or await the result later.

A submission is validated (pydantic) before anything is written, then recorded in the store and
queued. When the store and the broker are one Redis database both are one atomic write (the store's
script pushes the intake message). Otherwise it is published after the record; if that publish
fails the record is withdrawn and the error raised, so a caller never gets an id for a task that is
half-made, and if the record cannot be withdrawn (someone already picked it up) the store's reaper
still owes it a publish, so it is not lost either.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

import redis
from celery import Celery
from pydantic import ValidationError

from parjanya.app import create_app
from parjanya.broker.depth import QueueDepths, queue_depths_for
from parjanya.config import ParjanyaConfig, Settings, get_config
from parjanya.governance.budgets import SpendLedger, TenantOverBudget
from parjanya.governance.capabilities import unservable
from parjanya.governance.shedding import Overloaded, ShedGate
from parjanya.limits import DEFAULT_LIMITS, RequestLimits
from parjanya.schema import TaskRequest, TaskResult
from parjanya.store import Created, IdempotencyConflict, TaskStore
from parjanya.store.outbox import Outbox

RequestLike = TaskRequest | Mapping[str, Any] | str

__all__ = [
    "Client",
    "IdempotencyConflict",
    "Overloaded",
    "TaskHandle",
    "TaskNotFound",
    "TenantOverBudget",
    "govern",
]


class TaskNotFound(KeyError):
    pass


def as_request(request: RequestLike, limits: RequestLimits = DEFAULT_LIMITS) -> TaskRequest:
    """Validate anything a caller passes, under `limits`; whatever is wrong is a ValidationError.

    A `TaskRequest` is validated again (it may have been changed since it was built, or built with
    `model_construct`), and a value of the wrong type (None, bytes, a list) is pydantic's error to
    report, not a TypeError from here.
    """
    data: object = request
    if isinstance(request, str):
        data = {"prompt": request}
    elif isinstance(request, Mapping) and not isinstance(request, dict):
        data = dict(request)
    return TaskRequest.model_validate(data, context={"limits": limits})


def govern(task: TaskRequest, config: ParjanyaConfig, spend: SpendLedger) -> None:
    """What is refused at the door, before anything is written: a task no configured deployment
    can serve (a ValidationError naming `constraints`, a 422 over HTTP), and a tenant whose
    budget is spent (`TenantOverBudget`). The API runs the same two checks on its event loop."""
    refuse_unservable(task, config)
    refusal = spend.standing(task.tenant).refusal()
    if refusal is not None:
        raise refusal


def refuse_unservable(task: TaskRequest, config: ParjanyaConfig) -> None:
    """A ValidationError naming `constraints` when no allowed tier has a deployment for it."""
    problem = unservable(task, config)
    if problem is not None:
        raise ValidationError.from_exception_data(
            "TaskRequest",
            [
                {
                    "type": "value_error",
                    "loc": ("constraints",),
                    "input": task.constraints.model_dump(),
                    "ctx": {"error": ValueError(problem)},
                }
            ],
        )


class TaskHandle:
    """A submitted task, shaped like arq's Job: an id plus ways to read its outcome."""

    def __init__(self, client: Client, task_id: str, *, created: bool = True) -> None:
        self.client = client
        self.id = task_id
        self.created = created  # False when an idempotency key matched an earlier submission

    def status(self) -> TaskResult:
        return self.client.status(self.id)

    def result(self, timeout: float | None = 60.0) -> TaskResult:
        """Wait until the task is terminal (succeeded, dead_lettered, failed, cancelled or expired)."""
        return self.client.wait(self.id, timeout)

    async def aresult(self, timeout: float | None = 60.0) -> TaskResult:
        return await self.client.aresult(self.id, timeout)

    def __repr__(self) -> str:
        return f"TaskHandle(id={self.id!r})"


class Client:
    def __init__(
        self,
        broker_url: str | None = None,
        *,
        result_url: str | None = None,
        config: ParjanyaConfig | None = None,
    ) -> None:
        settings = Settings()
        if broker_url is not None:
            settings = settings.model_copy(update={"broker_url": broker_url})
        if result_url is not None:
            settings = settings.model_copy(update={"result_url": result_url})
        self.settings = settings
        self.config = config or get_config()
        self.store = TaskStore.from_url(
            self.settings.store_url,
            idempotency_ttl_s=self.config.reliability.idempotency_ttl_s,
        )
        self._app: Celery | None = None

    @property
    def spend(self) -> SpendLedger:
        """Tenant standings, read at submit (only for tenants with a budget)."""
        return SpendLedger(self.config.governance.budgets, sync=self.store.redis)

    @property
    def app(self) -> Celery:
        if self._app is None:
            self._app = create_app(self.settings, self.config)
        return self._app

    @cached_property
    def outbox(self) -> Outbox:
        return Outbox(self.app, self.settings.store_url)

    @cached_property
    def queue_depths(self) -> QueueDepths:
        """The broker's queue depths, for shedding (`broker/depth.py`): read from the broker in
        use, chosen once here."""
        return queue_depths_for(self.settings.broker_url)

    @cached_property
    def shedding(self) -> ShedGate:
        """Load shedding shared by every producer (`governance/shedding.py`): its state in the
        store, the queues measured on the broker."""
        return ShedGate(self.store.redis, self.config.admission, self.queue_depths)

    def submit(self, request: RequestLike) -> TaskHandle:
        """Validate `request` under the configured limits, then record and queue it.

        Raises `Overloaded` (with `retry_after_s`) while the task's SLA class is being shed.
        """
        return self._submit_valid(as_request(request, self.config.limits))

    def _submit_valid(self, task: TaskRequest) -> TaskHandle:
        govern(task, self.config, self.spend)
        self.shedding.check(task.sla.klass)
        created = self.outbox.create(
            self.store, task, requeue_after_s=self.config.reliability.requeue_after_s
        )
        return TaskHandle(self, created.task_id, created=created.created)

    def publish_created(self, created: Created, task: TaskRequest) -> None:
        """Publish the intake message of a task recorded without it (the store and the broker
        are not one Redis database); if that fails, withdraw the record and raise."""
        self.outbox.publish_created(self.store, created, task)

    def submit_many(self, requests: Iterable[RequestLike]) -> list[TaskHandle]:
        """Validate every request first, so a bad one enqueues none of them."""
        validated = [as_request(r, self.config.limits) for r in requests]
        for task in validated:
            govern(task, self.config, self.spend)
        return [self._submit_valid(r) for r in validated]

    def status(self, task_id: str) -> TaskResult:
        result = self.store.get(task_id)
        if result is None:
            raise TaskNotFound(task_id)
        return result

    def wait(self, task_id: str, timeout: float | None = 60.0) -> TaskResult:
        """Block until terminal. Rides out a broker/store restart until the deadline."""
        budget = float("inf") if timeout is None else timeout
        deadline = time.monotonic() + budget
        while True:
            try:
                if self.store.wait_done(task_id, min(deadline - time.monotonic(), 1.0)):
                    return self.status(task_id)
                self.status(task_id)  # raises TaskNotFound for an id that never existed
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(0.2)  # the store is restarting; the task's state survives in it
            if time.monotonic() >= deadline:
                raise TimeoutError(f"task {task_id} not finished after {timeout}s")

    def handle(self, task_id: str) -> TaskHandle:
        return TaskHandle(self, task_id)

    async def asubmit(self, request: RequestLike) -> TaskHandle:
        return await asyncio.to_thread(self.submit, request)

    async def aresult(self, task_id: str, timeout: float | None = 60.0) -> TaskResult:
        return await asyncio.to_thread(self.wait, task_id, timeout)

    def close(self) -> None:
        self.store.redis.close()
        if "outbox" in self.__dict__:
            self.outbox.publisher.close()
        if self._app is not None:
            self._app.close()
        if "queue_depths" in self.__dict__:
            self.queue_depths.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
