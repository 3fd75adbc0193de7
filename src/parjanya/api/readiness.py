"""Is this API ready to do work: the broker answers and every pool has a live worker.

Readiness asks the workers with Celery's remote-control ping: each worker is named
`<stage>.<pid>@<host>` (`parjanya worker`), so the replies say which pools are alive. A ping waits
its whole timeout for replies, so the answer is cached for `api.ready_cache_s` and probes in
between are free.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from parjanya.client import Client
from parjanya.queues import TIERS

#: The pools that must answer: the classifier (every task passes it) and one per tier.
POOLS = ("intake", *TIERS)


@dataclass
class Readiness:
    client: Client
    cache_s: float
    ping_timeout_s: float = 0.5
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _cached: tuple[float, dict[str, Any]] | None = None

    async def report(self) -> dict[str, Any]:
        async with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > self.cache_s:
                self._cached = (now, await asyncio.to_thread(self._probe))
            return self._cached[1]

    def _probe(self) -> dict[str, Any]:
        try:
            self.client.store.redis.ping()
            replies = self.client.app.control.ping(timeout=self.ping_timeout_s)
        except Exception as exc:  # any failure to reach the broker is 'not ready', said why
            return {"ready": False, "broker": False, "error": f"{type(exc).__name__}: {exc}"}
        alive: dict[str, int] = dict.fromkeys(POOLS, 0)
        for reply in replies or []:
            for name in reply:
                stage = name.split(".", 1)[0]
                if stage in alive:
                    alive[stage] += 1
        return {"ready": all(alive.values()), "broker": True, "workers": alive}
