"""One asyncio event loop per worker process, in a background thread, for the model calls.

Celery's task bodies are synchronous; providers are async httpx clients whose connection pools must
live on one loop. A process-wide loop thread lets every task (from any pool thread) run coroutines on
that loop and keeps connections alive between tasks. It is created lazily after fork, so a prefork
child never inherits its parent's loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
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


_lock = threading.Lock()
_current: tuple[int, LoopThread] | None = None


def loop_thread() -> LoopThread:
    global _current
    with _lock:
        if _current is None or _current[0] != os.getpid():
            _current = (os.getpid(), LoopThread())
        return _current[1]
