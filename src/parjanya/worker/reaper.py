"""Republish hops that are owed but not moving: the fix for kill -9 and lost publishes.

Kombu restores a dead worker's unacked message only after the visibility timeout *and* a sweep, and
cannot tell a dead worker's message from a live one's (docs/RELIABILITY.md modes 3 and 6). The store can:
a running hop whose lease was not renewed has lost its holder, and a queued hop untouched for
`requeue_after_s` may never have reached the broker. Every worker runs this loop; a short Redis lock
lets one of them reap per period. Republishing is always safe because the claim deduplicates.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from celery import Celery

from parjanya import keys
from parjanya.broker.publish import publish_hop
from parjanya.store import TaskStore

log = logging.getLogger("parjanya.reaper")


def reap_once(
    store: TaskStore, app: Celery, *, requeue_after_s: float, expired_ttl_s: int = 0
) -> int:
    """Republish what is owed, each hop in its SLA class; a task past its deadline ends expired."""
    owed = store.reap_due(requeue_after_s=requeue_after_s, expired_ttl_s=expired_ttl_s)
    for message in owed:
        publish_hop(app, message)
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
        expired_ttl_s: int = 0,
    ) -> None:
        self.store, self.app = store, app
        self.interval_s, self.requeue_after_s = interval_s, requeue_after_s
        self.expired_ttl_s = expired_ttl_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="parjanya-reaper", daemon=True)

    def _my_turn(self) -> bool:
        lock_ms = int(self.interval_s * 1000 * 0.9)
        return bool(self.store.redis.set(keys.REAPER_LOCK, self.owner, nx=True, px=lock_ms))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                if self._my_turn():
                    reap_once(
                        self.store,
                        self.app,
                        requeue_after_s=self.requeue_after_s,
                        expired_ttl_s=self.expired_ttl_s,
                    )
            except Exception:
                log.exception("reaper pass failed; will try again")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
