"""Keep hops' leases alive while their holders work, so the reaper only takes back dead holders.

One renewer thread per worker process serves every hop in flight (a registry, not a thread per
hop): cheap at one task, and still one thread when a process holds hundreds of calls. A lease that
was superseded (another worker claimed the hop) is only logged: the store's fencing token already
refuses this holder's commit. A lease the store finds no longer held under this holder's token is
not superseded: on a busy loop a hop's commit often lands some time before its lease is let go
(a loaded worker warned about a hundred such hops at its first renewal).

Renewals are paced from the start of the last one that succeeded: the next is due a third of the
lease later, so a slow round trip shortens the wait instead of adding to it. A renewal that fails
is retried promptly (from `retry_s`, doubling, at most a tenth of the lease apart) rather than a
third of the lease later, and never later than a quarter of the time left before the leases
would lapse. A store paused for more than two thirds of the lease lets a lease renewed just
before the pause lapse by the clock; the renewer then renews it as soon as the store answers, and
the reaper holds back for half a lease after the store was away (`worker/reaper.py`), so a pause
shorter than the lease repeats no call (`tests/integration/test_store_pause.py`). The renewer's
store client should time out well inside the lease (`WorkerContext.leases` gives it a third of it),
or one hung call could outlast the lease by itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType

log = logging.getLogger("parjanya.lease")

#: Renews leases `(task_id, token)` for `ttl_s`: one answer per lease, falsy only when another
#: holder superseded it (`store.Renewal`).
Renew = Callable[[list[tuple[str, str]], float], Sequence[int]]


class LeaseRenewer:
    def __init__(
        self,
        renew: Renew,
        ttl_s: float,
        *,
        retry_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        start: bool = True,
    ) -> None:
        self.renew, self.ttl_s, self.retry_s, self.clock = renew, ttl_s, retry_s, clock
        self._held: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewed_at = clock()  # start of the last renewal that succeeded (or of idleness)
        self._failures = 0
        self.thread = threading.Thread(target=self._loop, name="parjanya-lease", daemon=True)
        if start:
            self.thread.start()

    def _loop(self) -> None:
        delay = self.ttl_s / 3
        while not self._stop.wait(delay):
            delay = self.tick()

    def stop(self) -> None:
        self._stop.set()

    def stopping(self) -> bool:
        return self._stop.is_set()

    def tick(self) -> float:
        """Renew every held lease once; returns how long to wait before the next renewal."""
        with self._lock:
            held = list(self._held)
        started = self.clock()
        if not held:
            self._renewed_at, self._failures = started, 0
            return self.ttl_s / 3
        try:
            renewed = self.renew(held, self.ttl_s)
        except Exception as exc:
            return self._failed(held, exc)
        self._renewed_at, self._failures = started, 0
        with self._lock:
            # A hop that committed while its renewal was on the way is no longer held: it was
            # not superseded, it is finished.
            superseded = [key for key, ok in zip(held, renewed, strict=True) if not ok]
            superseded = [key for key in superseded if key in self._held]
        for task_id, _ in superseded:
            log.warning("lease on %s superseded; this attempt is fenced off", task_id)
        return max(0.0, started + self.ttl_s / 3 - self.clock())

    def _failed(self, held: list[tuple[str, str]], exc: Exception) -> float:
        self._failures += 1
        left = self._renewed_at + self.ttl_s - self.clock()
        # Doubling from `retry_s`, never more than a tenth of the lease apart: once the store
        # answers again, the next try comes well inside the half lease the reaper holds back for
        # after the store was away (`worker/reaper.py`), also when the leases lapsed by the clock.
        backoff = min(self.retry_s * 2.0 ** (self._failures - 1), self.ttl_s / 10)
        if left <= 0:
            log.error(
                "renewing %d leases failed for longer than the lease (%.1fs); the reaper may hand "
                "them to another worker: %r",
                len(held),
                self.ttl_s,
                exc,
            )
            return backoff
        log.warning("renewing %d leases failed (%.1fs left); retrying: %r", len(held), left, exc)
        return max(0.01, min(backoff, left / 4))

    def hold(self, task_id: str, token: str) -> Lease:
        return Lease(self, task_id, token)

    def _add(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._held.add(key)

    def _remove(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._held.discard(key)


class Lease:
    """`with renewer.hold(task_id, token) as lease:` renews until the block exits."""

    def __init__(self, renewer: LeaseRenewer, task_id: str, token: str) -> None:
        self._renewer, self._key = renewer, (task_id, token)

    def __enter__(self) -> Lease:
        self._renewer._add(self._key)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._renewer._remove(self._key)
