"""Hundreds of model calls in flight per worker process, fed by a handful of Celery threads.

Tier work is waiting on HTTP. A Celery thread per call does not scale (Celery's threads pool at
-c 200 reaches about 64 % of ideal on 1 s calls), so a tier hop is split in two:

1. the Celery task claims the hop in the store (lease + fencing token), then hands the call to this
   process's asyncio loop and returns, so Celery acknowledges the message;
2. the loop runs up to `max_inflight` hops at once; each finishes through the same store
   compare-and-set as before (finish, escalate or dead-letter).

Why acknowledging before the call is safe here: from the claim on, the store owns the hop. The lease
is renewed while the hop runs; if the process dies, the lease lapses and the reaper republishes
(RELIABILITY.md: the broker is a delivery hint, the store is the truth). It also removes, for tier
pools, the failure modes that come from holding unacked messages for the length of a model call:
visibility-timeout redelivery and duplicate parallel runs after a connection blip.

Back-pressure: when `max_inflight` hops are running, `submit` blocks the Celery thread, so the
worker stops fetching until a slot frees up. On shutdown, `drain` waits for running hops; anything
still running when the process exits is recovered by the reaper after its lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future

from parjanya.aio import LoopThread

log = logging.getLogger("parjanya.dispatch")

DEFAULT_MAX_INFLIGHT = 1000


def max_inflight_from_env() -> int:
    return int(os.environ.get("PARJANYA_MAX_INFLIGHT", DEFAULT_MAX_INFLIGHT))


class Dispatcher:
    def __init__(self, loop: LoopThread, max_inflight: int) -> None:
        self.loop = loop
        self.max_inflight = max_inflight
        self._slots = threading.BoundedSemaphore(max_inflight)
        self._running: set[Future[None]] = set()
        self._lock = threading.Lock()
        self.peak = 0

    @property
    def inflight(self) -> int:
        with self._lock:
            return len(self._running)

    def submit(self, job: Callable[[], Awaitable[None]]) -> None:
        """Run `job()` on the loop; blocks while `max_inflight` jobs are already running."""
        self._slots.acquire()
        future = asyncio.run_coroutine_threadsafe(self._run(job), self.loop.loop)
        with self._lock:
            self._running.add(future)
            self.peak = max(self.peak, len(self._running))
        future.add_done_callback(self._done)

    async def _run(self, job: Callable[[], Awaitable[None]]) -> None:
        try:
            await job()
        except Exception:  # the job is total; this is the last line of defence
            log.exception("in-flight hop crashed outside its guard")

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._running.discard(future)
        self._slots.release()

    def drain(self, timeout_s: float) -> bool:
        """Wait for running hops; True when none is left."""
        deadline = time.monotonic() + timeout_s
        while self.inflight and time.monotonic() < deadline:
            time.sleep(0.05)
        left = self.inflight
        if left:
            log.warning("%d hops still running at shutdown; the reaper will recover them", left)
        return left == 0
