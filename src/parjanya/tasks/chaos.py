"""Fault injection for reliability drills: a worker that dies on a chosen task, as an OOM kill would.

Set `PARJANYA_CHAOS_KILL_ON` to a string, and a worker process that is about to run a hop whose
prompt contains it sends itself SIGKILL: no cleanup, no acknowledgement, exactly what the kernel's
OOM killer does to a task that blows up its worker. With a supervisor restarting the worker, such a
task is delivered again and again until the store's delivery cap dead-letters it as poison
(RELIABILITY T3). Unset (the default), this costs one comparison per hop.
"""

from __future__ import annotations

import logging
import os
import signal

from parjanya.schema import TaskRequest

KILL_ON_ENV = "PARJANYA_CHAOS_KILL_ON"

log = logging.getLogger("parjanya.chaos")

_kill_on = os.environ.get(KILL_ON_ENV) or None


def die_if_marked(request: TaskRequest | None) -> None:
    if _kill_on is None or request is None or _kill_on not in request.text():
        return
    log.warning(
        "chaos: %s found in a prompt; killing this worker (pid %d)", KILL_ON_ENV, os.getpid()
    )
    os.kill(os.getpid(), signal.SIGKILL)
