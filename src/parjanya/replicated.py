"""Redis clients whose writes count only once a replica has them (Redis `WAIT`).

Used for a store behind Sentinel (`parjanya.connect`): a failover promotes a replica, and what the
old primary acknowledged but had not yet sent it is gone. Waiting for `replicas` acknowledgements
after each write, on the connection that made it (WAIT counts that connection's writes), means a
reply the caller sees is a write the next primary holds. A write that was not acknowledged in
time is waited for again while the server is still primary (after a failover the new primary has
no replica until the old one rejoins it: its writes are kept, not repeated). A write the server
lost by being demoted raises `ReplicaAckError`, a `ConnectionError`, so redis-py's
reconnect-and-retry (which asks the Sentinels for the primary again) repeats it on the new one,
as the store's own retries would.

Reads go straight through. Blocking pops (the clients' wait for a task's end) are not waited on:
losing one only repeats a wake-up.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline as AsyncPipeline
from redis.asyncio.sentinel import SentinelManagedConnection as AsyncSentinelConnection
from redis.client import Pipeline
from redis.sentinel import SentinelManagedConnection

__all__ = ["AckedRedis", "Acks", "AsyncAckedRedis", "ReplicaAckError"]

#: Commands that write nothing, or whose loss in a failover does no harm.
NO_WAIT = frozenset(
    [
        "GET",
        "MGET",
        "HGET",
        "HMGET",
        "HGETALL",
        "HEXISTS",
        "HLEN",
        "HKEYS",
        "HVALS",
        "EXISTS",
        "TYPE",
        "TTL",
        "PTTL",
        "STRLEN",
        "LLEN",
        "LRANGE",
        "LINDEX",
        "SCARD",
        "SMEMBERS",
        "SISMEMBER",
        "ZCARD",
        "ZSCORE",
        "ZRANGE",
        "ZRANGEBYSCORE",
        "ZREVRANGE",
        "ZRANK",
        "ZCOUNT",
        "XLEN",
        "XRANGE",
        "XREVRANGE",
        "XINFO",
        "SCAN",
        "HSCAN",
        "SSCAN",
        "ZSCAN",
        "KEYS",
        "DBSIZE",
        "EVALSHA_RO",
        "EVAL_RO",
        "FCALL_RO",
        "SCRIPT",
        "PING",
        "ECHO",
        "INFO",
        "TIME",
        "ROLE",
        "CLIENT",
        "CONFIG",
        "SELECT",
        "AUTH",
        "HELLO",
        "WAIT",
        "WAITAOF",
        "BLMOVE",
        "BLPOP",
        "BRPOP",
        "BRPOPLPUSH",
        "BZPOPMIN",
        "BZPOPMAX",
        "SUBSCRIBE",
        "PSUBSCRIBE",
    ]
)


class ReplicaAckError(redis.ConnectionError):
    """Fewer replicas than required acknowledged a write in time; treat it as not made."""


@dataclass(frozen=True)
class Acks:
    """How many replicas must hold a write before its reply counts, and how long to wait."""

    replicas: int = 0
    timeout_ms: int = 1000
    #: How long a write may wait on a primary that is still primary: after a failover the new
    #: one has no replica until the old one rejoins it, and its writes are kept, not repeated.
    patience_s: float = 30.0

    def settled(self, acknowledged: int, role: object, waited_s: float) -> bool:
        """Whether the write is safe (True), worth waiting for (False), or lost (raises)."""
        if acknowledged >= self.replicas:
            return True
        if _name(role) != "MASTER":
            raise ReplicaAckError("the primary was demoted before a replica had the write")
        if waited_s >= self.patience_s:
            raise ReplicaAckError(
                f"{acknowledged} of {self.replicas} replicas acknowledged a write in {waited_s:.0f} s"
            )
        return False


def _name(command: object) -> str:
    text = command.decode() if isinstance(command, bytes) else str(command)
    return text.split(" ", 1)[0].upper()


def writes(commands: Iterable[tuple[tuple[Any, ...], Any]]) -> bool:
    return any(_name(args[0]) not in NO_WAIT for args, _ in commands)


def _demoted(error: object) -> bool:
    """A write refused because the server is a replica now, inside a script or not."""
    return isinstance(error, redis.ReadOnlyError) or (
        isinstance(error, redis.ResponseError) and "READONLY" in str(error)
    )


def settled(replies: list[Any]) -> list[Any]:
    """`replies`, unless one is a demoted primary's refusal: then the whole round trip is lost."""
    for reply in replies:
        if _demoted(reply):
            raise ReplicaAckError(f"the primary was demoted: {reply}") from reply
    return replies


@contextmanager
def demotion_is_a_lost_connection() -> Iterator[None]:
    """A READONLY refusal (redis-py converts only a bare one, not one raised inside a Lua
    script or a pipeline) becomes a `ConnectionError`: reconnect, ask the Sentinels, repeat."""
    try:
        yield
    except redis.ResponseError as error:
        if _demoted(error):
            raise ReplicaAckError(f"the primary was demoted: {error}") from error
        raise


class AckedPipeline(Pipeline):
    acks = Acks()

    def _wait(self, connection: Any, commands: Any) -> None:
        """WAIT on the connection that wrote; while the server stays primary, wait again."""
        if not (self.acks.replicas and writes(commands)):
            return
        started = time.monotonic()
        with demotion_is_a_lost_connection():
            while True:
                connection.send_command("WAIT", self.acks.replicas, self.acks.timeout_ms)
                acknowledged = int(connection.read_response())
                connection.send_command("ROLE")
                role = connection.read_response()[0]
                if self.acks.settled(acknowledged, role, time.monotonic() - started):
                    return

    def _execute_transaction(self, connection: Any, commands: Any, raise_on_error: bool) -> Any:
        with demotion_is_a_lost_connection():
            replies = super()._execute_transaction(connection, commands, raise_on_error)
        settled(replies)
        self._wait(connection, commands)
        return replies

    def _execute_pipeline(self, connection: Any, commands: Any, raise_on_error: bool) -> Any:
        with demotion_is_a_lost_connection():
            replies = super()._execute_pipeline(  # type: ignore[no-untyped-call]
                connection, commands, raise_on_error
            )
        settled(replies)
        self._wait(connection, commands)
        return replies


class AckedRedis(redis.Redis):
    """`redis.Redis` whose every write waits for `acks` (set once, after construction)."""

    acks = Acks()

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> AckedPipeline:
        pipe = AckedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.acks = self.acks
        return pipe

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if _name(args[0]) in NO_WAIT:
            return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        with self.pipeline(transaction=False) as pipe:  # one connection: WAIT sees this write
            pipe.execute_command(*args, **options)  # type: ignore[no-untyped-call]
            return pipe.execute()[0]


class AsyncAckedPipeline(AsyncPipeline):
    acks = Acks()

    async def _wait(self, connection: Any, commands: Any) -> None:
        if not (self.acks.replicas and writes(commands)):
            return
        started = time.monotonic()
        with demotion_is_a_lost_connection():
            while True:
                await connection.send_command("WAIT", self.acks.replicas, self.acks.timeout_ms)
                acknowledged = int(await connection.read_response())
                await connection.send_command("ROLE")
                role = (await connection.read_response())[0]
                if self.acks.settled(acknowledged, role, time.monotonic() - started):
                    return

    async def _execute_transaction(
        self, connection: Any, commands: Any, raise_on_error: bool
    ) -> Any:
        with demotion_is_a_lost_connection():
            replies = await super()._execute_transaction(connection, commands, raise_on_error)
        settled(replies)
        await self._wait(connection, commands)
        return replies

    async def _execute_pipeline(self, connection: Any, commands: Any, raise_on_error: bool) -> Any:
        with demotion_is_a_lost_connection():
            replies = await super()._execute_pipeline(connection, commands, raise_on_error)
        settled(replies)
        await self._wait(connection, commands)
        return replies


class AsyncAckedRedis(aioredis.Redis):
    """The asyncio twin of `AckedRedis`."""

    acks = Acks()

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> AsyncAckedPipeline:
        pipe = AsyncAckedPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.acks = self.acks
        return pipe

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if _name(args[0]) in NO_WAIT:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        async with self.pipeline(transaction=False) as pipe:
            pipe.execute_command(*args, **options)
            return (await pipe.execute())[0]


class ResolvingConnection(SentinelManagedConnection):
    """Asks the Sentinels where the primary is on every reconnect, not only the first connect.

    redis-py reconnects a dropped connection to the address it last had (`send_packed_command`
    calls `connect_check_health`, not the Sentinel-aware `connect`), so a write retried after a
    failover would go back to the demoted primary until the retries ran out.
    """

    def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if self._sock is None and self.connection_pool.is_master:
            self.host, self.port = self.connection_pool.get_master_address()
        super().connect_check_health(check_health, retry_socket_connect)


class AsyncResolvingConnection(AsyncSentinelConnection):
    """The asyncio twin of `ResolvingConnection`."""

    async def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if not self.is_connected and self.connection_pool.is_master:
            self.host, self.port = await self.connection_pool.get_master_address()
        await super().connect_check_health(check_health, retry_socket_connect)
