"""Celery's own task events for every hop, so Flower's Tasks page shows classifier and tier hops.

Batch feeders run hops without Celery's per-message machinery (worker/feeder.py), so Celery never
emits task events for them. This observer does, through Celery's `EventDispatcher` under the
worker's own hostname: `task-received` and `task-started` when a hop begins, then
`task-succeeded` or `task-failed` with its runtime. Each hop is one Flower task: uuid
`<task id>.<hop>`, name `parjanya.intake` or `parjanya.tier.<tier>`, args `(tier, tenant)`,
kwargs with the task id and hop, and the previous hop as parent, so a task's path is a chain of
links. No field holds request or answer text.

Cost: events are buffered in the dispatcher and published as one `task-multi` message per flush
(a background thread flushes every `flush_s`), not one publish per state change; the observer
exists only in a worker started with task events on (`-E`, `parjanya worker --events`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from parjanya.observe.hops import HopEnd, HopStart

log = logging.getLogger("parjanya.observe")


def received_fields(hop: HopStart) -> dict[str, Any]:
    """`task-received` fields as Celery writes them (args and kwargs are reprs)."""
    return {
        "uuid": hop.uuid,
        "name": hop.name,
        "args": repr((hop.tier or hop.stage, hop.tenant)),
        "kwargs": repr({"task_id": hop.task_id, "hop": hop.hop, "stage": hop.stage}),
        "root_id": f"{hop.task_id}.0",
        "parent_id": f"{hop.task_id}.{hop.hop - 1}" if hop.hop > 0 else None,
        "retries": 0,
        "eta": None,
        "expires": None,
    }


def ended_event(end: HopEnd) -> tuple[str, dict[str, Any]]:
    runtime = end.ms / 1000.0
    if end.ok:
        result = {"outcome": end.outcome, "model": end.model}
        return "task-succeeded", {
            "uuid": end.start.uuid,
            "result": repr(result),
            "runtime": runtime,
        }
    reason = end.outcome if end.error_type is None else f"{end.outcome}: {end.error_type}"
    return "task-failed", {
        "uuid": end.start.uuid,
        "exception": reason,
        "traceback": "",
        "runtime": runtime,
    }


class TaskEvents:
    """A hop observer that sends Celery task events through `dispatcher` (enabled, buffered)."""

    def __init__(self, dispatcher: Any, *, flush_s: float = 0.25) -> None:
        self.dispatcher = dispatcher
        self.flush_s = flush_s
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._flush_loop, name="task-events", daemon=True)

    @classmethod
    def for_worker(cls, app: Any, hostname: str, *, flush_s: float = 0.25) -> TaskEvents:
        """A dispatcher of its own (its own broker connection), named like the worker."""
        dispatcher = app.events.Dispatcher(
            app.connection_for_write(),
            hostname=hostname,
            enabled=True,
            buffer_group=["task"],
            buffer_limit=4096,  # the flush thread publishes; a full buffer flushes inline
        )
        return cls(dispatcher, flush_s=flush_s)

    def start(self) -> TaskEvents:
        self.thread.start()
        return self

    def started(self, hop: HopStart) -> None:
        self.dispatcher.send("task-received", **received_fields(hop))
        self.dispatcher.send("task-started", uuid=hop.uuid)

    def ended(self, hop: HopEnd) -> None:
        kind, fields = ended_event(hop)
        self.dispatcher.send(kind, **fields)

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_s):
            self.flush()

    def flush(self) -> None:
        try:
            self.dispatcher.flush()
        except Exception:  # the broker away: events wait in the buffer for the next flush
            log.warning("could not publish task events; retrying", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=2)
        self.flush()
        try:
            self.dispatcher.close()
            self.dispatcher.connection.close()
        except Exception:
            log.debug("closing the task-event connection failed", exc_info=True)
