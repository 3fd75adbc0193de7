"""A process's view of the shared breakers: what it answers from memory, and what makes it forget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import fakeredis

from parjanya import keys
from parjanya.resilience.breaker_state import BreakerRecord, Snapshot, trip
from parjanya.resilience.breaker_store import MemoryBreakerStore, RedisBreakerStore
from parjanya.resilience.breaker_view import BreakerView

NAME = "sim-small"


class CountingStore(MemoryBreakerStore):
    """The in-process store, counting the primitives that reached it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {"load": 0, "count": 0, "swap": 0}

    async def load(self, deployment: str, window_s: float = 0.0) -> Snapshot:
        self.calls["load"] += 1
        return await super().load(deployment, window_s)

    async def count(
        self, deployment: str, *, version: int, failed: bool, window_s: float
    ) -> Snapshot | None:
        self.calls["count"] += 1
        return await super().count(deployment, version=version, failed=failed, window_s=window_s)

    async def swap(self, deployment: str, *, version: int, record: BreakerRecord) -> bool:
        self.calls["swap"] += 1
        return await super().swap(deployment, version=version, record=record)


class Feed:
    """A change feed the test drives: `announce` is what another process's write would send."""

    def __init__(self) -> None:
        self.changes: asyncio.Queue[str | None] = asyncio.Queue()

    async def __call__(self, changed: Callable[[str], None], listening: Callable[[], None]) -> None:
        listening()
        while (deployment := await self.changes.get()) is not None:
            changed(deployment)

    async def announce(self, deployment: str) -> None:
        await self.changes.put(deployment)
        await asyncio.sleep(0)  # let the view take it

    async def drop(self) -> None:
        await self.changes.put(None)
        await asyncio.sleep(0)


async def _subscribed(view: BreakerView) -> None:
    await view.load("warm-up")  # starts following the feed
    for _ in range(10):
        await asyncio.sleep(0)


async def _listening_view(
    feed: Feed | None = None,
    *,
    recheck_s: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[CountingStore, BreakerView]:
    """A view over a fresh counting store, already following its feed."""
    store = CountingStore()
    view = BreakerView(store, feed or Feed(), recheck_s=recheck_s, clock=clock)
    await _subscribed(view)
    return store, view


def run(test: Callable[[], Any]) -> Any:
    return asyncio.run(test())


def test_a_closed_healthy_breaker_is_read_once_and_its_successes_file_nothing() -> None:
    async def scenario() -> None:
        store, view = await _listening_view()
        first = await view.load(NAME)
        for _ in range(100):
            snapshot = await view.load(NAME)
            assert snapshot.record.state == "closed"
            assert await view.count(NAME, version=first.record.version, failed=False, window_s=0)
        assert store.calls == {"load": 2, "count": 0, "swap": 0}  # warm-up and NAME
        await view.close()

    run(scenario)


def test_a_failure_is_filed_and_the_next_success_resets_the_streak_in_the_store() -> None:
    async def scenario() -> None:
        store, view = await _listening_view()
        version = (await view.load(NAME)).record.version
        failed = await view.count(NAME, version=version, failed=True, window_s=0)
        assert failed is not None and failed.record.failures == 1
        reset = await view.count(NAME, version=version, failed=False, window_s=0)
        assert reset is not None and reset.record.failures == 0
        assert store.calls["count"] == 2
        await view.close()

    run(scenario)


def test_an_announced_change_makes_every_view_read_the_store_again() -> None:
    async def scenario() -> None:
        feed = Feed()
        store, view = await _listening_view(feed)
        snapshot = await view.load(NAME)
        # Another process opens the breaker: the store changes and the change is announced.
        assert await store.swap(
            NAME, version=snapshot.record.version, record=trip(snapshot.record, 1.0)
        )
        await feed.announce(NAME)
        assert (await view.load(NAME)).record.state == "open"
        # Open is never kept: every call reads it (refusals need the probe's timer).
        await view.load(NAME)
        assert store.calls["load"] == 4
        await view.close()

    run(scenario)


def test_without_a_subscription_the_view_keeps_nothing() -> None:
    async def scenario() -> None:
        store, feed = CountingStore(), Feed()
        unfed = BreakerView(store, None, recheck_s=60.0)
        for _ in range(3):
            await unfed.load(NAME)
        assert store.calls["load"] == 3
        fed = BreakerView(store, feed, recheck_s=60.0)
        await _subscribed(fed)
        await feed.drop()  # the connection drops: what was seen may be missing announcements
        before = store.calls["load"]
        await fed.load(NAME)
        await fed.load(NAME)
        assert store.calls["load"] == before + 2
        await fed.close()

    run(scenario)


def test_an_entry_older_than_recheck_s_is_read_again() -> None:
    async def scenario() -> None:
        now = [0.0]
        store, view = await _listening_view(recheck_s=1.0, clock=lambda: now[0])
        await view.load(NAME)
        now[0] = 0.5
        await view.load(NAME)
        assert store.calls["load"] == 2
        now[0] = 1.6
        await view.load(NAME)
        assert store.calls["load"] == 3
        await view.close()

    run(scenario)


def test_calls_that_miss_together_share_one_read_and_a_swap_forgets() -> None:
    async def scenario() -> None:
        store, view = await _listening_view()
        snapshots = await asyncio.gather(*(view.load(NAME) for _ in range(50)))
        assert {s.record.version for s in snapshots} == {0}
        assert store.calls["load"] == 2
        assert await view.swap(NAME, version=0, record=BreakerRecord(failures=0))
        assert (await view.load(NAME)).record.version == 1  # read again, not the old entry
        assert store.calls["load"] == 3
        await view.close()

    run(scenario)


def test_the_redis_store_announces_swaps_and_failures_in_the_script_that_writes_them() -> None:
    async def scenario() -> None:
        server = fakeredis.FakeServer()
        writer = RedisBreakerStore(fakeredis.FakeAsyncRedis(server=server))
        watcher = RedisBreakerStore(fakeredis.FakeAsyncRedis(server=server))
        heard: list[str] = []
        listening = asyncio.Event()
        watching = asyncio.create_task(watcher.watch(heard.append, listening.set))
        await asyncio.wait_for(listening.wait(), 5)
        snapshot = await writer.load(NAME)
        await writer.count(NAME, version=snapshot.record.version, failed=False, window_s=0)
        await writer.count(NAME, version=snapshot.record.version, failed=True, window_s=0)
        await writer.swap(NAME, version=snapshot.record.version, record=trip(snapshot.record, 1.0))
        for _ in range(100):
            if len(heard) == 2:
                break
            await asyncio.sleep(0.01)
        watching.cancel()
        assert heard == [NAME, NAME]  # the failure and the swap; a success is not announced
        assert keys.BREAKER_CHANGES.startswith(keys.PREFIX)

    run(scenario)


def test_a_failure_fenced_off_by_an_unannounced_write_makes_the_view_forget() -> None:
    async def scenario() -> None:
        store, view = await _listening_view()
        await view.load(NAME)
        assert await store.swap(NAME, version=0, record=BreakerRecord(failures=2))  # unannounced
        assert await view.count(NAME, version=0, failed=True, window_s=0) is None
        assert (await view.load(NAME)).record.version == 1
        await view.close()

    run(scenario)


def test_the_view_answers_nothing_on_a_loop_of_its_own_until_its_feed_listens() -> None:
    async def scenario() -> None:
        store = CountingStore()
        never_listens = BreakerView(
            store, lambda changed, listening: asyncio.sleep(3600), recheck_s=60.0
        )
        await never_listens.load(NAME)
        await never_listens.load(NAME)
        assert await never_listens.count(NAME, version=0, failed=False, window_s=0) is not None
        assert store.calls == {"load": 2, "count": 1, "swap": 0}
        await never_listens.close()

    run(scenario)
