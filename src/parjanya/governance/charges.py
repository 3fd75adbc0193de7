"""Charging tenants: the Redis keys of their spend, and the batched transaction that moves them.

A tier worker holding hundreds of calls charges each paid answer (`budgets.SpendMiddleware`). One
MULTI/EXEC of twelve commands per call was a quarter of its event loop at 500 calls in flight, so
the charges made in one turn of the loop go as one transaction of their sums: the tenants' day and
month counters and the day's ledger still move together or not at all.

Why not one Lua script: it was tried. Alone it was cheaper on the client (170 against 280 µs a
round trip), but a finishing hop's wait for its charge did not shorten (0.31 ms either way), and
INCRBYFLOAT inside a script corrupted the heap of the embedded Redis (6.2, libc malloc, which
`parjanya up` and the tests start): Redis rewrites it as a longer SET past the script's argument
array (redis/redis#11652).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import redis.asyncio as aioredis

from parjanya.queues import Tier

__all__ = ["METRICS", "SEP", "Charge", "ChargeBatcher", "day_key", "ledger_key", "month_key"]

SEP = "\x1f"
METRICS = ("usd", "top_usd", "shadow_usd", "tokens_in", "tokens_out", "calls")


def day_key(tenant: str, day: date) -> str:
    return f"parjanya:spend:{tenant}:d:{day.isoformat()}"


def month_key(tenant: str, day: date) -> str:
    return f"parjanya:spend:{tenant}:m:{day:%Y-%m}"


def ledger_key(day: date) -> str:
    return f"parjanya:costs:{day.isoformat()}"


@dataclass(frozen=True)
class Charge:
    tenant: str
    tier: Tier
    model: str
    usd: float
    top_usd: float
    tokens_in: int
    tokens_out: int
    shadow: bool


def _sums(
    charges: Sequence[tuple[Charge, date]], ledger_days: int
) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], int], dict[str, int]]:
    """What a batch of charges adds to each counter and ledger field (key, field or ""), and the
    time each key is kept: the increments of one MULTI/EXEC."""
    floats: dict[tuple[str, str], float] = defaultdict(float)
    ints: dict[tuple[str, str], int] = defaultdict(int)
    ttls: dict[str, int] = {}
    for charge, on in charges:
        for key, days in ((day_key(charge.tenant, on), 2), (month_key(charge.tenant, on), 32)):
            floats[key, ""] += charge.usd
            ttls[key] = days * 86_400
        ledger = ledger_key(on)
        ttls[ledger] = ledger_days * 86_400
        prefix = SEP.join((charge.tenant, charge.tier, charge.model)) + SEP
        floats[ledger, prefix + "usd"] += charge.usd
        floats[ledger, prefix + "top_usd"] += charge.top_usd
        if charge.shadow:
            floats[ledger, prefix + "shadow_usd"] += charge.usd
        ints[ledger, prefix + "tokens_in"] += charge.tokens_in
        ints[ledger, prefix + "tokens_out"] += charge.tokens_out
        ints[ledger, prefix + "calls"] += 1
    return floats, ints, ttls


@dataclass
class _Batch:
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[None]
    charges: list[tuple[Charge, date]] = field(default_factory=list)


class ChargeBatcher:
    """Sends the charges of each turn of the event loop as one MULTI/EXEC of their sums."""

    def __init__(self, aio: aioredis.Redis, ledger_days: int) -> None:
        self.aio, self.ledger_days = aio, ledger_days
        self._batch: _Batch | None = None  # charges of this turn of the loop, sent at its end
        self._sending: set[asyncio.Future[None]] = set()

    async def charge(self, charge: Charge, on: date) -> None:
        """Charge `charge`; returns once it is in Redis, with the other charges of its batch.

        Charges made in the same turn of the event loop go as one MULTI/EXEC of their sums: the
        tenants' day and month counters and the day's ledger move together or not at all, and
        a process holding hundreds of calls pays one round trip a turn, not twelve commands a
        call (it was a quarter of a tier worker's loop at 500 calls in flight).
        """
        loop = asyncio.get_running_loop()
        batch = self._batch
        if batch is None or batch.loop is not loop:
            batch = self._batch = _Batch(loop, loop.create_future())
            loop.call_soon(self._send, batch)
        batch.charges.append((charge, on))
        await batch.done

    def _send(self, batch: _Batch) -> None:
        if self._batch is batch:
            self._batch = None
        sending = asyncio.ensure_future(self._write(batch))
        self._sending.add(sending)
        sending.add_done_callback(self._sending.discard)

    async def _write(self, batch: _Batch) -> None:
        floats, ints, ttls = _sums(batch.charges, self.ledger_days)
        try:
            async with self.aio.pipeline(transaction=True) as tx:
                for (key, name), amount in floats.items():
                    if name:
                        tx.hincrbyfloat(key, name, amount)
                    else:
                        tx.incrbyfloat(key, amount)
                for (key, name), count in ints.items():
                    tx.hincrby(key, name, count)
                for key, ttl in ttls.items():
                    tx.expire(key, ttl)
                await tx.execute()
        except Exception as exc:
            if not batch.done.done():
                batch.done.set_exception(exc)
            return
        if not batch.done.done():
            batch.done.set_result(None)
