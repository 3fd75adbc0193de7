"""Keep hops' leases alive while their holders work, so the reaper only takes back dead holders.

One renewer thread per worker process serves every hop in flight (a registry, not a thread per
hop): cheap at one task, and still one thread when a process holds hundreds of calls. A lease that
was superseded (the reaper gave the hop to another worker) is only logged: the store's fencing
token already refuses this holder's commit.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

from parjanya.store import TaskStore

log = logging.getLogger("parjanya.lease")


class LeaseRenewer:
    def __init__(self, store: TaskStore, ttl_s: float) -> None:
        self.store, self.ttl_s = store, ttl_s
        self._held: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="parjanya-lease", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(self.ttl_s / 3)
            with self._lock:
                held = list(self._held)
            if not held:
                continue
            try:
                renewed = self.store.heartbeat_many(held, self.ttl_s)
            except Exception:
                log.exception("renewing %d leases failed; retrying", len(held))
                continue
            for (task_id, _), ok in zip(held, renewed, strict=True):
                if not ok:
                    log.warning("lease on %s superseded; this attempt is fenced off", task_id)

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
