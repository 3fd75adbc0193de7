"""A hop's commit through a store that blips: retried while the hop's lease still holds.

By the time a tier hop commits, its model call has been paid for. If the commit failed on a lost
or saturated connection and was given up at once, the hop's lease would lapse and the reaper would
run the hop again: a second call, for a pause of the store shorter than the lease. So the commit
is retried (from 0.1 s, doubling to 2 s) for up to `within_s`, the length of a lease, which the
renewer keeps alive meanwhile; only then is the hop left to the reaper. Retrying is safe because
the commit is a compare-and-set on the fencing token: a retry of a write that did land is refused.

`retrying` serves the success commit on the event loop; `retrying_blocking` the escalation and
dead-letter commits, which run in a thread (`tasks/tier.py`, `worker/deadletter.py`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import redis

log = logging.getLogger("parjanya.worker")

T = TypeVar("T")

#: What a store round trip raises when the store, not the task, is at fault.
STORE_ERRORS = (redis.ConnectionError, redis.TimeoutError)


def _delays() -> Iterator[float]:
    delay = 0.1
    while True:
        yield delay
        delay = min(delay * 2, 2.0)


async def retrying(
    write: Callable[[], Awaitable[T]],
    within_s: float,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    deadline = clock() + within_s
    for delay in _delays():
        try:
            return await write()
        except STORE_ERRORS as exc:
            if clock() + delay > deadline:
                raise
            log.warning("store write failed; retrying in %.1fs: %r", delay, exc)
        await sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def retrying_blocking(
    write: Callable[[], T],
    within_s: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """`retrying` for a write that blocks its thread."""
    deadline = clock() + within_s
    for delay in _delays():
        try:
            return write()
        except STORE_ERRORS as exc:
            if clock() + delay > deadline:
                raise
            log.warning("store write failed; retrying in %.1fs: %r", delay, exc)
        sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
