"""Redis clients from URLs, one place for every store, breaker, limit and cache client.

A plain `redis://` (or `rediss://`, `unix://`) URL is redis-py's own `from_url`. A `sentinel://`
URL names Sentinels instead of a server, written the way Celery users write one for the broker:
hosts joined by `;`, the password and database on the first, and the master's name as a query
parameter (Celery takes it from `broker_transport_options`; a store URL must carry it itself):

    sentinel://:secret@10.0.0.1:26379/0;sentinel://10.0.0.2:26379;sentinel://10.0.0.3:26379?master_name=parjanya

The client then asks the Sentinels for the current primary on every new connection, so after a
failover the next reconnect (which the store's retries make: `worker/persist.py`) reaches the new
primary. The Sentinels themselves may need their own password (`sentinel_password=` in the query).

Replication is asynchronous, so a write the old primary acknowledged may never reach the new one,
and until Sentinel demotes it the old primary still takes writes that the switch then discards.
So a client of a Sentinel URL waits, after every write, until `min_replicas` replicas (default 1;
`&min_replicas=0` turns it off) have it (Redis `WAIT`, on the same connection, up to
`replica_timeout_ms`, default 1000). A write they did not acknowledge raises `ReplicaAckError`, a
`ConnectionError`: redis-py reconnects, asks the Sentinels again and repeats the write on the
primary they name, as the store's own retries would. The scripts it repeats are idempotent: a
create finds its task, a commit finds its hop already past.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from parjanya import replicated
from parjanya.replicated import ReplicaAckError

__all__ = [
    "ReplicaAckError",
    "SentinelURL",
    "async_redis_client",
    "is_cluster",
    "parse_sentinel_url",
    "redis_client",
]

SENTINEL_SCHEME = "sentinel"
#: Repeats of a write that met a failover: ~1 s apart once backed off, so about half a minute.
FAILOVER_RETRIES = 30


@dataclass(frozen=True)
class SentinelURL:
    """What a `sentinel://` URL says: where the Sentinels are and which primary to ask them for."""

    hosts: tuple[tuple[str, int], ...]
    master_name: str
    db: int = 0
    password: str | None = None
    username: str | None = None
    sentinel_kwargs: dict[str, Any] = field(default_factory=dict)
    min_replicas: int = 1
    replica_timeout_ms: int = 1000

    def sentinels(self, timeouts: dict[str, Any]) -> tuple[list[tuple[str, int]], dict[str, Any]]:
        """The arguments of redis-py's `Sentinel`, sync or asyncio: hosts, then keywords."""
        return list(self.hosts), {
            "sentinel_kwargs": {**timeouts, **self.sentinel_kwargs},
            **timeouts,
        }

    def primary(self, retry: type[Retry] | type[AsyncRetry]) -> dict[str, Any]:
        """The keywords of `Sentinel.master_for`: which database, as whom, retried how long.

        A write is repeated (same arguments, on the primary the Sentinels name then) for about
        `FAILOVER_RETRY_S`: long enough for a promotion and the old primary's return as a
        replica, before which a write cannot be acknowledged by one.
        """
        return {
            "db": self.db,
            "password": self.password,
            "username": self.username,
            "retry": retry(ExponentialBackoff(cap=1.0, base=0.05), FAILOVER_RETRIES),
        }


def is_cluster(client: object) -> bool:
    """Whether `client` talks to a Redis Cluster (sync or asyncio): the store then keeps to one
    hash slot per call and skips what spans slots (`store/tasks.py`)."""
    return isinstance(client, (RedisCluster, AsyncRedisCluster))


#: URL schemes of a plain Redis (one server, TCP, TLS or a unix socket).
REDIS_SCHEMES = ("redis", "rediss", "unix")


def is_redis(url: str) -> bool:
    return urlparse(url).scheme in REDIS_SCHEMES


def is_sentinel(url: str) -> bool:
    return url.split("://", 1)[0].lower() == SENTINEL_SCHEME


def parse_sentinel_url(url: str) -> SentinelURL:
    """Parse `sentinel://[[user]:pass@]host:port[/db][;sentinel://host:port...]?master_name=N`.

    Raises `ValueError` naming what is missing: a Sentinel URL that cannot reach a primary must
    fail at start, not at the first task.
    """
    hosts: list[tuple[str, int]] = []
    password = username = None
    db = 0
    query: dict[str, list[str]] = {}
    for part in url.split(";"):
        parsed = urlparse(part.strip())
        if parsed.scheme.lower() != SENTINEL_SCHEME or not parsed.hostname:
            raise ValueError(
                f"each part of a Sentinel URL must be sentinel://host:port, got {part!r}"
            )
        hosts.append((parsed.hostname, parsed.port or 26379))
        if parsed.password is not None and password is None:
            password, username = unquote(parsed.password), unquote(parsed.username or "") or None
        if parsed.path.strip("/") and not hosts[1:]:
            try:
                db = int(parsed.path.strip("/"))
            except ValueError:
                raise ValueError(
                    f"the database of a Sentinel URL must be a number: {parsed.path!r}"
                ) from None
        for key, values in parse_qs(parsed.query).items():
            query.setdefault(key, []).extend(values)
    names = query.get("master_name") or query.get("service_name")
    if not names:
        raise ValueError("a sentinel:// URL needs ?master_name=<the primary's name in Sentinel>")
    sentinel_kwargs: dict[str, Any] = {}
    if query.get("sentinel_password"):
        sentinel_kwargs["password"] = query["sentinel_password"][0]
    try:
        min_replicas = int(query.get("min_replicas", ["1"])[0])
        replica_timeout_ms = int(query.get("replica_timeout_ms", ["1000"])[0])
    except ValueError:
        raise ValueError("min_replicas and replica_timeout_ms must be whole numbers") from None
    return SentinelURL(
        min_replicas=max(0, min_replicas),
        replica_timeout_ms=max(1, replica_timeout_ms),
        hosts=tuple(hosts),
        master_name=names[0],
        db=db,
        password=password,
        username=username,
        sentinel_kwargs=sentinel_kwargs,
    )


def _timeouts(socket_timeout: float | None, connect_timeout: float | None) -> dict[str, Any]:
    return {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout
        if connect_timeout is not None
        else socket_timeout,
    }


def redis_client(
    url: str,
    *,
    socket_timeout: float | None = 30,
    socket_connect_timeout: float | None = 5,
    **kwargs: Any,
) -> redis.Redis:
    """A blocking client for `url`, a plain Redis URL or a Sentinel one."""
    timeouts = _timeouts(socket_timeout, socket_connect_timeout)
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **timeouts, **kwargs)
    spec = parse_sentinel_url(url)
    hosts, options = spec.sentinels(timeouts)
    client: replicated.AckedRedis = Sentinel(hosts, **options).master_for(
        spec.master_name,
        redis_class=replicated.AckedRedis,
        connection_class=replicated.ResolvingConnection,
        **spec.primary(Retry),
        **kwargs,
    )
    client.acks = replicated.Acks(spec.min_replicas, spec.replica_timeout_ms)
    return client


class _BlockingSentinelPool(AsyncSentinelPool, aioredis.BlockingConnectionPool):
    """Sentinel's pool that waits for a free connection at its cap instead of raising."""


def async_redis_client(
    url: str,
    *,
    socket_timeout: float | None = 30,
    socket_connect_timeout: float | None = 5,
    max_connections: int | None = None,
    pool_timeout: float = 20,
    **kwargs: Any,
) -> aioredis.Redis:
    """The asyncio twin of `redis_client`.

    With `max_connections`, callers beyond the cap wait up to `pool_timeout` for a connection
    (redis-py's `BlockingConnectionPool`): a process with a thousand hops in flight shares a few
    dozen connections instead of opening one per hop.
    """
    timeouts = _timeouts(socket_timeout, socket_connect_timeout)
    capped: dict[str, Any] = (
        {"max_connections": max_connections, "timeout": pool_timeout} if max_connections else {}
    )
    if not is_sentinel(url):
        if capped:
            pool = aioredis.BlockingConnectionPool.from_url(url, **timeouts, **capped, **kwargs)
            return aioredis.Redis(connection_pool=pool)
        return aioredis.Redis.from_url(url, **timeouts, **kwargs)
    spec = parse_sentinel_url(url)
    hosts, options = spec.sentinels(timeouts)
    client: replicated.AsyncAckedRedis = AsyncSentinel(hosts, **options).master_for(
        spec.master_name,
        redis_class=replicated.AsyncAckedRedis,
        connection_class=replicated.AsyncResolvingConnection,
        connection_pool_class=_BlockingSentinelPool if capped else AsyncSentinelPool,
        **spec.primary(AsyncRetry),
        **capped,
        **kwargs,
    )
    client.acks = replicated.Acks(spec.min_replicas, spec.replica_timeout_ms)
    return client
