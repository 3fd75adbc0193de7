"""Writes that count once a replica has them (`parjanya.replicated`), on real redis-servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from parjanya.replicated import AckedRedis, Acks, AsyncAckedRedis, ReplicaAckError
from parjanya.runtime.embedded_redis import EmbeddedRedis, free_port

pytestmark = pytest.mark.integration

INCR = "redis.call('INCR', KEYS[1]); return redis.call('GET', KEYS[1])"


class _Replica(EmbeddedRedis):
    def __init__(self, port: int, data_dir: Path, primary_port: int) -> None:
        super().__init__(port, data_dir, appendonly=False)
        self.primary_port = primary_port

    def command(self) -> list[str]:
        return [*super().command(), "--replicaof", "127.0.0.1", str(self.primary_port)]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    base = tmp_path_factory.mktemp("replicated")
    primary = EmbeddedRedis(free_port(), base / "primary", appendonly=False).start()
    replica = _Replica(free_port(), base / "replica", primary.port).start()
    deadline = time.monotonic() + 30
    while redis.Redis(port=replica.port).info("replication")["master_link_status"] != "up":
        assert time.monotonic() < deadline, "the replica never synced"
        time.sleep(0.1)
    try:
        yield primary.port, replica.port
    finally:
        replica.stop()
        primary.stop()


def _client(port: int, acks: Acks) -> AckedRedis:
    client = AckedRedis(port=port, retry=Retry(NoBackoff(), 0), socket_timeout=5)
    client.acks = acks
    return client


def test_a_write_returns_once_the_replica_has_it(pair: tuple[int, int]) -> None:
    primary, replica = pair
    client = _client(primary, Acks(1, 1000))
    client.set("replicated:k", "v")
    assert redis.Redis(port=replica).get("replicated:k") == b"v"  # no sleep: WAIT held it
    incr = client.register_script(INCR)
    assert incr(keys=["replicated:n"]) == b"1"
    with client.pipeline(transaction=True) as pipe:
        pipe.incr("replicated:n").incr("replicated:n")
        assert pipe.execute() == [2, 3]
    assert redis.Redis(port=replica).get("replicated:n") == b"3"


def test_a_write_no_replica_acknowledges_is_waited_for_then_refused(
    tmp_path: Path,
) -> None:
    with EmbeddedRedis(free_port(), tmp_path, appendonly=False) as alone:
        client = _client(alone.port, Acks(1, 100, patience_s=0.5))
        started = time.monotonic()
        with pytest.raises(ReplicaAckError, match="0 of 1 replicas"):
            client.set("replicated:k", "v")
        assert time.monotonic() - started >= 0.5  # waited while the server stayed primary
        assert client.get("replicated:k") == b"v"  # reads go straight through


def test_a_write_a_demoted_primary_refuses_is_a_lost_connection_even_inside_a_script(
    pair: tuple[int, int],
) -> None:
    _, replica = pair
    client = _client(replica, Acks(1, 100))
    incr = client.register_script(INCR)
    with pytest.raises(ReplicaAckError, match="demoted"):
        incr(keys=["replicated:x"])
    with pytest.raises(ReplicaAckError, match="demoted"):
        client.set("replicated:x", "1")
    assert isinstance(ReplicaAckError("x"), redis.ConnectionError)  # what every retry catches


def test_the_asyncio_client_waits_and_refuses_alike(pair: tuple[int, int]) -> None:
    primary, replica = pair

    async def scenario() -> None:
        writer = AsyncAckedRedis(port=primary, socket_timeout=5)
        writer.acks = Acks(1, 1000)
        await writer.set("replicated:a", "1")
        assert redis.Redis(port=replica).get("replicated:a") == b"1"
        demoted = AsyncAckedRedis(port=replica, socket_timeout=5, retry=None)
        demoted.acks = Acks(1, 100)
        with pytest.raises(ReplicaAckError, match="demoted"):
            await demoted.set("replicated:a", "2")
        await writer.aclose()
        await demoted.aclose()

    asyncio.run(scenario())


def test_reads_and_blocking_pops_are_not_waited_on(tmp_path: Path) -> None:
    with EmbeddedRedis(free_port(), tmp_path, appendonly=False) as alone:
        client = _client(alone.port, Acks(1, 100, patience_s=5))
        started = time.monotonic()
        client.get("replicated:none")
        client.hmget("replicated:h", ["a"])
        assert client.blpop(["replicated:list"], timeout=0.1) is None
        assert time.monotonic() - started < 2
