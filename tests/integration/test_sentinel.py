"""The store behind Redis Sentinel, failed over under load: nothing lost, no call made twice.

A primary, a replica and three Sentinels run from the same redis-server binary the other tests
use; the broker is the session's own Redis, the store (`PARJANYA_RESULT_URL`) a `sentinel://`
URL. Tasks are submitted, the primary is failed over while hops are claimed, running and
committing, and every task must end `succeeded` with its provider called exactly once: a commit
that met the old primary (now a read-only replica) is retried against the new one, and the lease
fencing the call holds across the switch.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from parjanya.client import Client
from parjanya.runtime.embedded_redis import EmbeddedRedis, free_port, redis_server_binary
from parjanya.sim.server import SimServer

from .conftest import Cluster, SimControl, make_cluster
from .test_reliability import _calls

pytestmark = pytest.mark.integration

MASTER = "parjanya"


class _Replica(EmbeddedRedis):
    def __init__(self, port: int, data_dir: Path, primary_port: int) -> None:
        super().__init__(port, data_dir)
        self.primary_port = primary_port

    def command(self) -> list[str]:
        return [*super().command(), "--replicaof", "127.0.0.1", str(self.primary_port)]


def _sentinel(port: int, primary_port: int, folder: Path) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "sentinel.conf"  # Sentinel rewrites its own file: it must be writable
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {folder.resolve()}\n"
        f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2\n"
        f"sentinel down-after-milliseconds {MASTER} 1000\n"
        f"sentinel failover-timeout {MASTER} 5000\n"
        f"sentinel parallel-syncs {MASTER} 1\n"
    )
    return subprocess.Popen(
        [redis_server_binary(), str(conf), "--sentinel"],
        stdout=(folder / "sentinel.log").open("wb"),
        stderr=subprocess.STDOUT,
    )


def _wait(condition: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():  # type: ignore[operator]
                return
        except redis.RedisError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def sentinel_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[int]]]:
    base = tmp_path_factory.mktemp("sentinel")
    primary = EmbeddedRedis(free_port(), base / "primary").start()
    replica = _Replica(free_port(), base / "replica", primary.port).start()
    ports = [free_port() for _ in range(3)]
    sentinels = [_sentinel(p, primary.port, base / f"s{p}") for p in ports]
    try:
        probes = [redis.Redis(port=p, socket_timeout=2) for p in ports]
        _wait(
            lambda: all(
                int(s.sentinel_master(MASTER)["num-other-sentinels"]) == 2
                and s.sentinel_slaves(MASTER)
                for s in probes
            ),
            60,
            "three Sentinels that know each other and the replica",
        )
        _wait(
            lambda: (
                redis.Redis(port=replica.port).info("replication")["master_link_status"] == "up"
            ),
            30,
            "the replica to sync",
        )
        url = ";".join(f"sentinel://127.0.0.1:{p}" for p in ports) + f"?master_name={MASTER}"
        yield url, ports
    finally:
        for process in sentinels:
            process.terminate()
            process.wait(timeout=10)
        replica.stop()
        primary.stop()


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker of this module's own: its workers' long visibility timeout (below) must not meet
    the other tests' workers, which record theirs on the session's broker."""
    server = EmbeddedRedis(free_port(), tmp_path_factory.mktemp("sentinel-broker")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sentinel_cluster(
    own_broker: str,
    sentinel_store: tuple[str, list[int]],
    sim: SimServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    url, _ = sentinel_store
    # Leases and hop time limits longer than a failover: with one replica, writes wait about ten
    # seconds here for the old primary to rejoin as a replica; the switch must not look like a
    # crash or a hung hop.
    running = make_cluster(
        own_broker,
        sim,
        tmp_path_factory.mktemp("sentinel-cluster"),
        lease_ttl_s=30.0,
        task_time_limit_s=60.0,
        visibility_timeout_s=120.0,
    )
    running.env["PARJANYA_RESULT_URL"] = url
    with running.serving("intake", "low"):
        yield running


def test_a_failover_of_the_store_under_load_loses_nothing_and_calls_nothing_twice(
    own_broker: str,
    sentinel_store: tuple[str, list[int]],
    sentinel_cluster: Cluster,
    sim_control: SimControl,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, ports = sentinel_store
    monkeypatch.setenv("PARJANYA_RESULT_URL", url)
    sentinel = redis.Redis(port=ports[0], socket_timeout=5)
    before = sentinel.sentinel_get_master_addr_by_name(MASTER)
    prompts: list[str] = []
    with Client(own_broker, config=sentinel_cluster.config) as client:
        assert client.settings.store_url == url
        handles = []
        promoted_at: int | None = None
        # Submit before, during and after the switch: hops are claimed, running and committing
        # across it, and producers write the store through it too.
        deadline = time.monotonic() + 60
        while (promoted_at is None or len(prompts) < promoted_at + 15) and (
            time.monotonic() < deadline
        ):
            prompt = f"Rename the variable tmp{len(prompts)} to total in report.py."
            handles.append(client.submit({"prompt": prompt, "max_tier": "low"}))
            prompts.append(prompt)
            if len(prompts) == 10:
                sentinel.execute_command("SENTINEL", "FAILOVER", MASTER)
            if promoted_at is None and sentinel.sentinel_get_master_addr_by_name(MASTER) != before:
                promoted_at = len(prompts)
            time.sleep(0.05)
        assert promoted_at is not None, "the Sentinels never promoted the replica"
        results = [handle.result(90) for handle in handles]
    old_primary = redis.Redis(host=before[0], port=int(before[1]), socket_timeout=5)
    _wait(  # the switch really happened: the old primary now follows the new one
        lambda: old_primary.info("replication")["role"] == "slave", 30, "the old primary's demotion"
    )
    assert [r.status.value for r in results] == ["succeeded"] * len(prompts), [
        (r.id, r.status.value, r.error) for r in results if r.status.value != "succeeded"
    ]
    calls = {p: _calls(sim_control, p) for p in prompts}
    assert all(n == 1 for n in calls.values()), {p: n for p, n in calls.items() if n != 1}
