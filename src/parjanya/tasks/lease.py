"""Keep a hop's lease alive while its holder works, so the reaper only takes back dead holders."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from parjanya.store import TaskStore

log = logging.getLogger("parjanya.lease")


class LeaseKeeper:
    """Renews the lease every third of its TTL until the block exits or the token is superseded."""

    def __init__(self, store: TaskStore, task_id: str, token: str, ttl_s: float) -> None:
        self.store, self.task_id, self.token, self.ttl_s = store, task_id, token, ttl_s
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="parjanya-lease", daemon=True)

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                if not self.store.heartbeat(self.task_id, self.token, self.ttl_s):
                    log.warning("lease on %s superseded; this attempt is fenced off", self.task_id)
                    self.lost.set()
                    return
            except Exception:
                log.exception("lease renewal for %s failed; retrying", self.task_id)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
