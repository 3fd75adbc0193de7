"""Fault injection for reliability drills: a worker that dies on a chosen task, as an OOM kill would.

Set `PARJANYA_CHAOS_KILL_ON` to a string, and the worker installs `KillOn` as its `before_hop` hook
(`worker/context.py`): a process about to run a hop whose prompt contains the string sends itself
SIGKILL, with no cleanup and no acknowledgement, exactly what the kernel's OOM killer does to a task
that blows up its worker. With a supervisor restarting the worker, such a task is delivered again
and again until the store's delivery cap dead-letters it as poison (docs/RELIABILITY.md, T3). Unset (the
default), no hook is installed and this module is never imported.
"""

from __future__ import annotations

import logging
import os
import signal

from parjanya.schema import TaskRequest

KILL_ON_ENV = "PARJANYA_CHAOS_KILL_ON"

log = logging.getLogger("parjanya.chaos")


class KillOn:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __call__(self, request: TaskRequest | None) -> None:
        if request is None or self.marker not in request.text():
            return
        log.warning(
            "chaos: %s found in a prompt; killing this worker (pid %d)", KILL_ON_ENV, os.getpid()
        )
        os.kill(os.getpid(), signal.SIGKILL)
