"""Hundreds of model calls in flight per worker process, fed by a handful of Celery threads.

Tier work is waiting on HTTP. A Celery thread per call does not scale (Celery's threads pool at
-c 200 reaches about 64 % of ideal on 1 s calls), so a tier hop is split in two:

1. the Celery task (or a batch feeder) claims the hop in the store (lease + fencing token), then
   hands the call to this process's asyncio loop and returns, so Celery acknowledges the message;
2. the loop runs up to `max_inflight` hops at once; each finishes through the same store
   compare-and-set as before (finish, escalate or dead-letter).

Why acknowledging before the call is safe here: from the claim on, the store owns the hop. The lease
is renewed while the hop runs; if the process dies, the lease lapses and the reaper republishes
(docs/RELIABILITY.md: the broker is a delivery hint, the store is the truth). It also removes, for tier
pools, the failure modes that come from holding unacked messages for the length of a model call:
visibility-timeout redelivery and duplicate parallel runs after a connection blip.

A slot bounds model calls, the scarce thing (a provider's concurrency, the sockets): a hop whose
calls are over (`calls_over`) gives its slot to the next admitted hop at once, and judges its
answer and commits beside it, as one of at most `max_finishing` hops doing so. A hop that kept
its slot to the end left it idle for that bookkeeping: 38-42 ms at p50 and 138-160 ms at p90 of
each call's cycle at 200 in flight on a busy loop. A full finishing stage (a store slow for a long
while) makes hops keep their slots again, so the process never runs more than
`max_inflight + max_finishing` hops (with `backlog` more admitted and waiting).

Slots are counted on the loop: a hop that finishes starts the next admitted one in the same loop
turn. Handing each start across threads instead cost the hop's slot a wake-up of the admitting
thread, and that thread's wait for the GIL behind a busy loop: at 500 calls in flight a tenth of
the slots sat idle that way. So up to `backlog` hops are admitted beyond the slots; the feeders
keep that backlog full, and `submit` blocks a Celery thread only when it is.

Shutdown: `close` gives back, uncounted, the admitted hops that have not started (the reaper's next
sweep republishes them for another worker, instead of their leases), and `drain` waits for running
hops; anything still running when the process exits is recovered by the reaper after its lease.

Running alone (docs/RELIABILITY.md, T3): hundreds of hops share this process, so a hop that kills it (an OOM,
a segfault) takes every neighbour with it, and the store counts a delivery against each. A hop that
has already been in flight in `isolate_after` workers that died is a suspect: `submit(alone=True)`
waits for every admitted hop to finish and for other threads' admissions to end, then runs it with
nothing beside it. Meanwhile every other hop is given back uncounted and the feeders pop nothing.
If the suspect kills the process again, only its own count rises; if it finishes, it was a
bystander, and it cost one call's worth of this process's time.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from parjanya.aio import LoopThread

log = logging.getLogger("parjanya.dispatch")

SHUTTING_DOWN = "worker shutting down"
SOMEONE_ALONE = "a suspect runs alone in this process"


@dataclass(eq=False)
class _Admitted:
    run: Callable[[], Awaitable[None]]
    give_back: Callable[[str], None]


class Dispatcher:
    def __init__(
        self,
        loop: LoopThread,
        max_inflight: int,
        backlog: int | None = None,
        max_finishing: int | None = None,
    ) -> None:
        self.loop = loop
        self.max_inflight = max_inflight
        self.max_finishing = max_inflight if max_finishing is None else max_finishing
        # Kept small: an admitted hop waiting for a slot holds a lease, and the longer it waits the
        # more a lost renewal could hand it to another worker while it still runs here.
        self.backlog = max(1, max_inflight // 10) if backlog is None else backlog
        self._state = threading.Condition()
        self._pending: deque[_Admitted] = deque()
        self._holding: set[asyncio.Task[None]] = set()  # hops holding a call slot
        self._finishing = 0  # hops whose calls are over, judging and committing
        self._tasks: set[asyncio.Task[None]] = set()
        self._pump_due = False
        self._closed = False
        self._closing = threading.Lock()  # held while `close` gives hops back
        self._alone: _Admitted | bool = False  # True while waiting for the others to finish
        self._admitting: Counter[int] = Counter()  # threads inside `admitting`
        self.peak = 0

    @property
    def inflight(self) -> int:
        """Admitted hops, waiting for a slot, calling or finishing."""
        with self._state:
            return len(self._holding) + self._finishing + len(self._pending)

    @property
    def room(self) -> int:
        """How many more hops to admit now: none while a hop runs alone."""
        with self._state:
            return 0 if self.alone or self._closed else self._unfilled()

    @property
    def alone(self) -> bool:
        """A hop is running, or about to run, with nothing beside it: admit nothing now."""
        return self._alone is not False

    def _unfilled(self) -> int:
        """Slots and backlog not yet taken (caller holds `_state`)."""
        return self.max_inflight + self.backlog - len(self._holding) - len(self._pending)

    @contextmanager
    def admitting(self, timeout_s: float) -> Iterator[None]:
        """Claim and submit hops inside this block, so that none is claimed beside a lone hop.

        It waits (at most `timeout_s`) while a hop runs alone, and a hop about to run alone waits
        for every other thread's block to end: a hop claimed in one of them either is admitted
        first (and the lone hop waits for it to finish) or is given back uncounted.
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

    def submit(
        self,
        job: Callable[[], Awaitable[None]],
        *,
        give_back: Callable[[str], None],
        alone: bool = False,
    ) -> None:
        """Run `job()` on the loop once a slot is free; never from the loop's own thread.

        Blocks while `max_inflight + backlog` hops are admitted; with `alone`, until every admitted
        hop has finished. A hop that will not start here (shutdown, or another hop runs alone) is
        handed to `give_back` with the reason, now or at `close`.
        """
        admitted = _Admitted(job, give_back)
        with self._state:
            refusal = self._wait_to_run_alone() if alone else self._wait_for_room()
            if refusal is None:
                self._pending.append(admitted)
                if alone:
                    self._alone = admitted
                wake = not self._pump_due and len(self._holding) < self.max_inflight
                self._pump_due = self._pump_due or wake
        if refusal is not None:
            give_back(refusal)
        elif wake:
            self.loop.loop.call_soon_threadsafe(self._pump)

    def _wait_for_room(self) -> str | None:
        while True:
            if self._closed:
                return SHUTTING_DOWN
            if self.alone:
                return SOMEONE_ALONE
            if self._unfilled() > 0:
                return None
            self._state.wait(timeout=0.1)

    def _wait_to_run_alone(self) -> str | None:
        if self.alone:
            return SOMEONE_ALONE
        self._alone = True
        me = threading.get_ident()
        while (
            self._holding
            or self._finishing
            or self._pending
            or any(t != me for t in self._admitting)
        ):
            if self._closed:
                break
            self._state.wait(timeout=0.1)
        if self._closed:
            self._alone = False
            self._state.notify_all()
            return SHUTTING_DOWN
        return None

    def _pump(self) -> None:
        """Start admitted hops while slots are free (on the loop)."""
        with self._state:
            self._pump_due = False
            while self._pending and len(self._holding) < self.max_inflight:
                task = self.loop.loop.create_task(self._run(self._pending.popleft()))
                self._holding.add(task)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            self.peak = max(self.peak, len(self._holding))

    def calls_over(self) -> None:
        """The calling hop has made its last model call: its slot goes to the next admitted hop
        now, while it judges and commits. A no-op outside a hop this dispatcher started, for a
        hop that gave its slot already, and while `max_finishing` hops are finishing (the hop
        then keeps its slot to the end: back-pressure on a store slow to commit)."""
        task = asyncio.current_task()
        with self._state:
            if task not in self._holding or self._finishing >= self.max_finishing:
                return
            self._holding.discard(task)
            self._finishing += 1
            more = bool(self._pending)
            self._state.notify_all()  # a submit waiting for room has it now, as at a hop's end
        if more:
            self._pump()

    async def _run(self, admitted: _Admitted) -> None:
        try:
            await admitted.run()
        except Exception:  # the job is total; this is the last line of defence
            log.exception("in-flight hop crashed outside its guard")
        finally:
            task = asyncio.current_task()
            with self._state:
                if task in self._holding:
                    self._holding.discard(task)
                else:
                    self._finishing -= 1
                if self._alone is admitted:
                    self._alone = False
                self._state.notify_all()
                more = bool(self._pending)
            if more:
                self._pump()

    def close(self) -> None:
        """Start no more jobs and give back those not started; running ones carry on.

        Returns only once every hop not started has been given back, also when another thread's
        `close` took them: the SIGTERM hook closes in a thread of its own, and the shutdown hook
        that closes again then drains and exits. Had it returned at once, the process could end
        with the store writes of giving back unfinished, leaving those hops to their leases.
        """
        with self._closing:
            with self._state:
                self._closed = True
                unstarted = list(self._pending)
                self._pending.clear()
                if self._alone in unstarted:
                    self._alone = False
                self._state.notify_all()
            for admitted in unstarted:
                admitted.give_back(SHUTTING_DOWN)

    def drain(self, timeout_s: float) -> bool:
        """Wait for running hops; True when none is left."""
        deadline = time.monotonic() + timeout_s
        while self.inflight and time.monotonic() < deadline:
            time.sleep(0.05)
        left = self.inflight
        if left:
            log.warning("%d hops still running at shutdown; the reaper will recover them", left)
        return left == 0
