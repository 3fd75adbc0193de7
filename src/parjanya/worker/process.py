"""What one worker process keeps between Celery's calls, owned by its Celery app.

Celery calls task bodies and signal handlers with no arguments of ours, and the app is the one
object all of them reach (a bound task's `self.app`, the tasks' and hooks' `parjanya.app.app`).
So the app factory (`app.create_app`) gives every app one `WorkerProcess`, and everything a
worker builds hangs off it instead of off module globals: the worker context (built on first use
in each process, so a forked prefork child builds its own), what `worker_ready` starts (reaper,
feeders, liveness, webhook sender, task events, the metrics server) for shutdown to stop, and
whether the process is ending deaf.

This module imports nothing heavy at load: the app module imports it, and producers (the SDK, the
API) import the app without ever building a worker.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from celery import Celery

    from parjanya.metrics_serve import Exposition
    from parjanya.observe.task_events import TaskEvents
    from parjanya.webhooks.sender import WebhookSender
    from parjanya.worker.context import WorkerContext
    from parjanya.worker.feeding import Feeder
    from parjanya.worker.liveness import Liveness
    from parjanya.worker.reaper import Reaper


@dataclass
class Running:
    """What a worker started at `worker_ready`, for its shutdown hooks to stop (tasks/lifecycle.py)."""

    reaper: Reaper | None = None
    liveness: Liveness | None = None
    feeders: list[Feeder] = field(default_factory=list)
    webhooks: WebhookSender | None = None
    task_events: TaskEvents | None = None
    #: The worker sends task events (-E): its prefork children send their hops' events too.
    children_send_events: bool = False
    #: The pool's `/metrics` server (tasks/exposition.py).
    exposition: Exposition | None = None


class WorkerProcess:
    """One app's per-process worker state. A fork copies it; the context is rebuilt per pid."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.running = Running()
        #: Set when a thread the worker needs died and it is ending for a restart
        #: (`worker/liveness.py`); `parjanya worker` then exits with `EXIT_DEAF`.
        self.deaf = threading.Event()
        self._lock = threading.Lock()
        self._context: tuple[int, WorkerContext] | None = None

    def context(self) -> WorkerContext:
        """This process's worker context, built from the settings and config on first use."""
        with self._lock:
            if self._context is None or self._context[0] != os.getpid():
                from parjanya.config import get_config, get_settings
                from parjanya.worker.context import build_context

                self._context = (os.getpid(), build_context(get_settings(), get_config(), self.app))
            return self._context[1]

    def current(self) -> WorkerContext | None:
        """This process's context if one was built (shutdown hooks must not build one)."""
        with self._lock:
            owned = self._context
        return owned[1] if owned is not None and owned[0] == os.getpid() else None


def process_of(app: Celery) -> WorkerProcess:
    """The worker state of `app`, which `app.create_app` gave it."""
    process = getattr(app, "worker_process", None)
    if not isinstance(process, WorkerProcess):
        raise TypeError(f"{app!r} was not built by parjanya.app.create_app: it has no worker state")
    return process
