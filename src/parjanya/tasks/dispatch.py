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
worker stops fetching until a slot frees up. On shutdown, `close` turns away hops still waiting for
a slot (their callers give them back to the store at once, so another worker takes them at the
reaper's next sweep instead of after a lease), and `drain` waits for running hops; anything still
running when the process exits is recovered by the reaper after its lease.

Running alone (RELIABILITY T3): hundreds of hops share this process, so a hop that kills it (an OOM,
a segfault) takes every neighbour with it, and the store counts a delivery against each. A hop that
has already been in flight in `isolate_after` workers that died is a suspect: `submit(alone=True)`
waits for the running hops to finish, then runs it with nothing beside it. Meanwhile every other
hop is turned away (`HopTurnedAway`, and its caller hands it back uncounted) and the feeders pop
nothing. If the suspect kills the process again, only its own count rises; if it finishes, it was a
bystander, and it cost one call's worth of this process's time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager

from parjanya.aio import LoopThread

log = logging.getLogger("parjanya.dispatch")

DEFAULT_MAX_INFLIGHT = 1000


def max_inflight_from_env() -> int:
    return int(os.environ.get("PARJANYA_MAX_INFLIGHT", DEFAULT_MAX_INFLIGHT))


class HopTurnedAway(RuntimeError):
    """This hop will not start here: the process is shutting down, or another hop runs alone."""


class DispatcherClosed(HopTurnedAway):
    """The process is shutting down: a hop that has not started will not start here."""


class Dispatcher:
    def __init__(self, loop: LoopThread, max_inflight: int) -> None:
        self.loop = loop
        self.max_inflight = max_inflight
        self._slots = threading.BoundedSemaphore(max_inflight)
        self._closed = threading.Event()
        self._running: set[Future[None]] = set()
        self._state = threading.Condition()
        self._alone: Future[None] | bool = False  # True while waiting for the others to finish
        self._admitting: Counter[int] = Counter()  # threads inside `admitting`
        self.peak = 0

    @property
    def inflight(self) -> int:
        with self._state:
            return len(self._running)

    @property
    def alone(self) -> bool:
        """A hop is running, or about to run, with nothing beside it: admit nothing now."""
        return self._alone is not False

    @contextmanager
    def admitting(self, timeout_s: float) -> Iterator[None]:
        """Claim and start hops inside this block, so that none is claimed beside a lone hop.

        It waits (at most `timeout_s`) while a hop runs alone, and a hop about to run alone waits
        for every other thread's block to end: a hop claimed in one of them either started before
        (and the lone hop waits for it to finish) or is turned away and handed back uncounted.
        """
        me = threading.get_ident()
        with self._state:
            self._state.wait_for(lambda: not self.alone, timeout=timeout_s)
            self._admitting[me] += 1
        try:
            yield
        finally:
            with self._state:
                self._admitting[me] -= 1
                if not self._admitting[me]:
                    del self._admitting[me]
                self._state.notify_all()

    def submit(self, job: Callable[[], Awaitable[None]], *, alone: bool = False) -> None:
        """Run `job()` on the loop; blocks while `max_inflight` jobs are already running.

        Raises `HopTurnedAway` instead of starting the job once `close` is called, or while
        another job runs alone; with `alone`, first waits for every running job to finish.
        """
        if alone:
            self._wait_to_run_alone()
        while not self._slots.acquire(timeout=0.1):
            self._refuse_if_closed()
        with self._state:  # the check and the start are one step: `alone` waits for `_running`
            if not alone and (self.alone or self._closed.is_set()):
                self._slots.release()
                self._refuse_if_closed()
                raise HopTurnedAway("another hop is running alone in this process")
            future = asyncio.run_coroutine_threadsafe(self._run(job), self.loop.loop)
            self._running.add(future)
            self.peak = max(self.peak, len(self._running))
            if alone:
                self._alone = future
        future.add_done_callback(self._done)

    def _wait_to_run_alone(self) -> None:
        with self._state:
            if self.alone:
                raise HopTurnedAway("another hop is running alone in this process")
            self._refuse_if_closed()
            self._alone = True
            me = threading.get_ident()
            try:
                while self._running or any(t != me for t in self._admitting):
                    self._state.wait(timeout=0.1)
                    self._refuse_if_closed()
            except DispatcherClosed:
                self._alone = False
                self._state.notify_all()
                raise

    def _refuse_if_closed(self) -> None:
        if self._closed.is_set():
            raise DispatcherClosed("worker shutting down")

    async def _run(self, job: Callable[[], Awaitable[None]]) -> None:
        try:
            await job()
        except Exception:  # the job is total; this is the last line of defence
            log.exception("in-flight hop crashed outside its guard")

    def _done(self, future: Future[None]) -> None:
        with self._state:
            self._running.discard(future)
            if self._alone is future:
                self._alone = False
            self._state.notify_all()
        self._slots.release()

    def close(self) -> None:
        """Start no more jobs; those already running carry on (see `drain`)."""
        self._closed.set()

    def drain(self, timeout_s: float) -> bool:
        """Wait for running hops; True when none is left."""
        deadline = time.monotonic() + timeout_s
        while self.inflight and time.monotonic() < deadline:
            time.sleep(0.05)
        left = self.inflight
        if left:
            log.warning("%d hops still running at shutdown; the reaper will recover them", left)
        return left == 0
