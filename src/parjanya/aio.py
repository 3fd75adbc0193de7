"""An asyncio event loop in a background thread, for a worker process's model calls.

Celery's task bodies are synchronous; providers are async clients whose connection pools must
live on one loop. One loop thread per process lets every task (from any pool thread) run
coroutines on that loop and keeps connections alive between tasks. The worker context owns it
(`WorkerContext.loop`, started on first use), and the context is built per process, so a prefork
child never inherits its parent's loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed: its scheduler and sockets are in C, and at 500 calls in flight
    the stock loop's own bookkeeping (handles, timer heap, selector) was an eighth of the worker's
    CPU (bench/inflight.py)."""
    try:
        import uvloop
    except ImportError:  # Windows: the stock loop
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class LoopThread:
    def __init__(self) -> None:
        self.loop = new_event_loop()
        # Blocking store writes of finished hops run here (asyncio.to_thread), off the loop.
        self.loop.set_default_executor(ThreadPoolExecutor(32, thread_name_prefix="parjanya-io"))
        self._thread = threading.Thread(target=self._run, name="parjanya-aio", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


class SharedReads(Generic[K, T]):
    """Reads of one key that overlap share one call (500 calls start at once on a cold cache).

    A read joins the one in flight only if `version` is the same as when that one began: a caller
    that bumps its version on a change never gets an answer read before the change.
    """

    def __init__(self) -> None:
        self._flights: dict[K, tuple[int, asyncio.Future[T]]] = {}

    async def read(self, key: K, version: int, fetch: Callable[[], Awaitable[T]]) -> T:
        flight = self._flights.get(key)
        if flight is None or flight[0] != version:
            future = asyncio.ensure_future(fetch())
            flight = self._flights[key] = (version, future)
            future.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(flight[1])

    def _landed(self, key: K, done: asyncio.Future[T]) -> None:
        flight = self._flights.get(key)
        if flight is not None and flight[1] is done:
            del self._flights[key]
