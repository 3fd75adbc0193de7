"""Reading what spans the store's shards: one command per shard (`keys.SHARDS`), one round trip.

The store's per-task writes stay in one shard's hash slot; whatever is process-wide (the reaper's
sweep, counts, the dead-letter listing, the webhook outbox) is the union of every shard's copy, read
with `per_shard` (or `per_shard_async`) in one non-transactional pipeline: its keys span every
slot, so it could not be one transaction on a Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio as aioredis

from parjanya import keys

__all__ = ["per_shard", "per_shard_async"]


def per_shard(client: redis.Redis, command: Callable[[Any, int], object]) -> list[Any]:
    """`command(pipeline, shard)` queued for every shard; the replies, in shard order."""
    with client.pipeline(transaction=False) as pipe:
        for shard in keys.all_shards():
            command(pipe, shard)
        return pipe.execute()


async def per_shard_async(
    client: aioredis.Redis, command: Callable[[Any, int], object]
) -> list[Any]:
    """`per_shard` on the event loop."""
    async with client.pipeline(transaction=False) as pipe:
        for shard in keys.all_shards():
            command(pipe, shard)
        return await pipe.execute()
