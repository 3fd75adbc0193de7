"""A process's view of the shared breakers: the closed, healthy case answered from memory.

Reading a deployment's breaker before every call and filing every success after it cost two store
round trips per call; at 500 calls in flight they queued on the connection pool and added about
150 ms to each call (bench/inflight.py). Yet while a breaker is closed and nothing has failed,
the read always says "allow" and the success changes nothing. So `BreakerView` sits in front of a
store and keeps, per deployment, the last closed snapshot it saw:

- `load` answers from it while it is younger than `recheck_s`; any other state goes to the store.
- `count` of a success that would reset nothing (closed, no failures, same version) files
  nothing, whatever the age of the entry (see below). Failures, and successes that reset a
  streak, go to the store.
- `swap` always goes to the store.

What keeps the view honest is the store's change feed (`RedisBreakerStore.watch`): every swap and
every failure counted, by any process, is announced in the same script that writes it, and the
view forgets that deployment at once. So an open breaker is skipped by every process as soon as
the announcement lands (about a millisecond), and another process's failure makes this one file
its next success, which keeps "consecutive" exact across processes. `recheck_s` bounds what a
lost announcement (a dropped connection) can cost; while not subscribed, the view keeps nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any, Protocol

from parjanya.aio import SharedReads
from parjanya.resilience.breaker_state import BreakerRecord, Snapshot
from parjanya.resilience.breaker_store import BreakerStore

__all__ = ["BreakerView", "ChangeFeed"]

log = logging.getLogger(__name__)

_RESUBSCRIBE_S = 1.0


class ChangeFeed(Protocol):
    def __call__(
        self, changed: Callable[[str], None], listening: Callable[[], None]
    ) -> Coroutine[Any, Any, None]:
        """Deliver changed deployments until the feed drops (see `RedisBreakerStore.watch`)."""
        ...


@dataclass(frozen=True)
class _Seen:
    snapshot: Snapshot
    read_at: float  # the view's clock when read


class BreakerView:
    """A `BreakerStore` that answers closed breakers from memory, kept fresh by a change feed."""

    def __init__(
        self,
        store: BreakerStore,
        feed: ChangeFeed | None,
        *,
        recheck_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.feed, self.recheck_s, self._clock = store, feed, recheck_s, clock
        self._seen: dict[str, _Seen] = {}
        # Bumped on every forget: a read that started before a change must not be kept after it.
        self._generation: dict[str, int] = {}
        self._reads: SharedReads[tuple[str, float], Snapshot] = SharedReads()
        self._listening = False
        self._watcher: asyncio.Task[None] | None = None

    async def load(self, deployment: str, window_s: float = 0.0) -> Snapshot:
        cached = self._fresh(deployment)
        if cached is not None:
            return cached
        generation = self._generation.get(deployment, 0)
        return await self._reads.read(
            (deployment, window_s), generation, lambda: self._read(deployment, window_s, generation)
        )

    async def _read(self, deployment: str, window_s: float, generation: int) -> Snapshot:
        snapshot = await self.store.load(deployment, window_s)
        self._keep(deployment, snapshot, generation)
        return snapshot

    async def count(
        self, deployment: str, *, version: int, failed: bool, window_s: float
    ) -> Snapshot | None:
        # Any age will do here: while subscribed, every failure and swap of this deployment
        # anywhere would have dropped the entry, so "no failures at this version" still holds.
        seen = self._seen.get(deployment) if self._listening else None
        if not failed and window_s == 0 and seen is not None:
            record = seen.snapshot.record
            if record.version == version and record.failures == 0:
                return self._fresh(deployment) or seen.snapshot  # a success that resets nothing
        generation = self._generation.get(deployment, 0)
        snapshot = await self.store.count(
            deployment, version=version, failed=failed, window_s=window_s
        )
        if snapshot is None:
            self.forget(deployment)
        else:
            self._keep(deployment, snapshot, generation)
        return snapshot

    async def swap(self, deployment: str, *, version: int, record: BreakerRecord) -> bool:
        self.forget(deployment)
        return await self.store.swap(deployment, version=version, record=record)

    def forget(self, deployment: str) -> None:
        self._seen.pop(deployment, None)
        self._generation[deployment] = self._generation.get(deployment, 0) + 1

    def _fresh(self, deployment: str) -> Snapshot | None:
        self._watch()
        seen = self._seen.get(deployment)
        if seen is None:
            return None
        age = self._clock() - seen.read_at
        if age >= self.recheck_s:
            return None
        return replace(seen.snapshot, now=seen.snapshot.now + age)

    def _keep(self, deployment: str, snapshot: Snapshot, generation: int) -> None:
        keep = (
            self._listening
            and snapshot.record.state == "closed"
            and self._generation.get(deployment, 0) == generation
        )
        if keep:
            self._seen[deployment] = _Seen(snapshot, self._clock())

    def _watch(self) -> None:
        """Start following the feed, on the loop of the first caller (a process has one)."""
        if self.feed is None or self._watcher is not None:
            return
        self._watcher = asyncio.get_running_loop().create_task(self._follow(self.feed))

    async def _follow(self, feed: ChangeFeed) -> None:
        while True:
            try:
                await feed(self.forget, self._subscribed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("breaker change feed dropped (%s); re-reading every breaker", exc)
            self._listening = False
            for deployment in list(self._seen):  # announcements may have been missed
                self.forget(deployment)
            await asyncio.sleep(_RESUBSCRIBE_S)

    def _subscribed(self) -> None:
        self._listening = True

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        self._listening = False
        for deployment in list(self._seen):
            self.forget(deployment)
