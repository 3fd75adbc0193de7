"""Republish hops that are owed but not moving: the fix for kill -9 and lost publishes.

Kombu restores a dead worker's unacked message only after the visibility timeout *and* a sweep, and
cannot tell a dead worker's message from a live one's (docs/RELIABILITY.md modes 3 and 6). The store can:
a running hop whose lease was not renewed has lost its holder, and a queued hop untouched for
`requeue_after_s` may never have reached the broker. Every worker runs this loop; a short Redis lock
lets one of them reap per period. Republishing is always safe because the claim deduplicates.

A lease that lapsed while the store itself did not answer (a paused or swapping redis-server, a
network stall) is no sign that its holder died: no holder could renew. When the store comes back,
the reaper's first round trip and the holders' renewals race, and a hop reaped in that race runs
twice. So a round trip that failed, or took longer than a sweep period or a sixth of the lease,
marks the store as having been away, and the reaper republishes nothing for half a lease after
it: the renewer retries well within that (`worker/lease.py`), and a holder that did die is
recovered that much later. A pause long enough to lapse a lease (over two thirds of it, since
leases are renewed every third) always shows while `reaper_interval_s` is at most half the lease
(the defaults: 5 s and 30 s): a sweep starts in it and waits out the rest
(docs/RELIABILITY.md mode 5; `tests/integration/test_store_pause.py`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from celery import Celery

from parjanya import keys
from parjanya.broker.publish import HopPublisher
from parjanya.store import TaskStore
from parjanya.worker import observe

log = logging.getLogger("parjanya.reaper")


def reap_once(
    store: TaskStore, publisher: HopPublisher, *, requeue_after_s: float, expired_ttl_s: int = 0
) -> int:
    """Republish what is owed, each hop in its SLA class; a task past its deadline ends expired
    and is counted by this process (`parjanya_tasks_total{status="expired"}`), once."""
    owed = store.reap_due(
        requeue_after_s=requeue_after_s, expired_ttl_s=expired_ttl_s, on_expired=observe.ended
    )
    for message in owed:
        publisher.publish(message)
        log.warning(
            "republished %s hop %s (%s): lease expired or never picked up",
            message.task_id,
            message.hop,
            message.stage,
        )
    if owed:
        store.count("reaper_republished", len(owed))
    return len(owed)


class Reaper:
    def __init__(
        self,
        store: TaskStore,
        app: Celery,
        *,
        interval_s: float,
        requeue_after_s: float,
        lease_ttl_s: float,
        expired_ttl_s: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.app = store, app
        self.publisher = HopPublisher(app)
        self.interval_s, self.requeue_after_s = interval_s, requeue_after_s
        self.expired_ttl_s = expired_ttl_s
        self.grace_s = lease_ttl_s / 2  # after the store was away: time for holders to renew
        self.slow_s = min(interval_s, lease_ttl_s / 6)  # a round trip this long: it was away
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._away_until = 0.0  # republish nothing before this (the store was away)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="parjanya-reaper", daemon=True)

    def _my_turn(self) -> bool:
        lock_ms = int(self.interval_s * 1000 * 0.9)
        return bool(self.store.redis.set(keys.REAPER_LOCK, self.owner, nx=True, px=lock_ms))

    def sweep(self) -> int:
        """One period: take the lock, and reap unless the store was just away. Returns how many
        hops were republished."""
        started = self.clock()
        try:
            mine = self._my_turn()
        except Exception:
            self._was_away()
            raise
        if self.clock() - started > self.slow_s:
            self._was_away()
        if not mine or self.clock() < self._away_until:
            return 0
        return reap_once(
            self.store,
            self.publisher,
            requeue_after_s=self.requeue_after_s,
            expired_ttl_s=self.expired_ttl_s,
        )

    def _was_away(self) -> None:
        if self.clock() >= self._away_until:
            log.warning(
                "the store was away; republishing nothing for %.1fs while holders renew",
                self.grace_s,
            )
        self._away_until = self.clock() + self.grace_s

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sweep()
            except Exception:
                log.exception("reaper pass failed; will try again")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
