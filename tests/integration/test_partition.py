"""Two hosts on one box, one cut off from the broker for longer than a lease, then healed.

Run alone with `python -m pytest -m slow tests/integration/test_partition.py` (it needs root for
network namespaces and says why it skips without). Host a and host b each run a low-tier pool in a
namespace of their own (`netns.py`); the classifier runs on the box itself. With calls in flight
on host a, its route to Redis is blackholed for three leases: its leases lapse, the reaper
republishes those hops, and host b serves them. When the route comes back, whatever host a still
holds is fenced: its late commits are refused, and it starts nothing it no longer owns.

What must hold: every task succeeds exactly once; no provider call is made after a task's result
was committed (the counts are the same well after the heal); a hop is called at most twice (host
a's call cut off by the partition, and host b's).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from parjanya.client import Client
from parjanya.runtime.embedded_redis import EmbeddedRedis, free_port
from parjanya.schema import TaskStatus
from parjanya.sim.config import SimConfig
from parjanya.sim.server import SimServer

from . import netns
from .conftest import Cluster, SimControl, make_cluster
from .test_reliability import _calls

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LEASE_S = 2.0


class _BridgedRedis(EmbeddedRedis):
    """Listens on loopback and on the bridge, where the namespaced hosts reach it."""

    def command(self) -> list[str]:
        argv = super().command()
        at = argv.index("--bind")
        return [*argv[: at + 1], "127.0.0.1", netns.BROKER_ADDRESS, *argv[at + 2 :]]

    @property
    def url(self) -> str:
        return f"redis://{netns.BROKER_ADDRESS}:{self.port}/0"


@pytest.fixture(scope="module")
def network() -> Iterator[netns.Network]:
    why = netns.unavailable()
    if why is not None:
        pytest.skip(f"no network namespaces here: {why}")
    net = netns.Network().open()
    try:
        net.add_host("a", 11)
        net.add_host("b", 12)
        yield net
    finally:
        net.close()


def test_a_host_partitioned_from_the_broker_past_its_lease_loses_nothing_and_reruns_nothing(
    network: netns.Network, tmp_path: Path
) -> None:
    broker = _BridgedRedis(free_port(), tmp_path / "redis", appendonly=False).start()
    sim = SimServer(SimConfig(latency_scale=0.05, seed=1), host=netns.PROVIDER_ADDRESS).start()
    cluster: Cluster | None = None
    try:
        cluster = make_cluster(broker.url, sim, tmp_path, lease_ttl_s=LEASE_S)
        control = SimControl(sim)
        cluster.start("intake")
        host_a, host_b = network.hosts["a"], network.hosts["b"]
        pool_a = cluster.start("low", argv=host_a.argv(_worker_argv()))
        cluster.start("low", argv=host_b.argv(_worker_argv()))
        prompts = [f"Rename setting {i} in app.toml. [[sim:latency=1.5]]" for i in range(60)]
        with Client(broker.url, config=cluster.config) as client:
            handles = [client.submit({"prompt": p, "max_tier": "low"}) for p in prompts]
            time.sleep(1.0)  # both hosts hold calls in flight
            host_a.partition()
            time.sleep(3 * LEASE_S)
            host_a.heal()
            results = [h.result(timeout=120) for h in handles]
            settled = {p: _calls(control, p) for p in prompts}
            time.sleep(3 * LEASE_S)  # reapers sweep again; host a is back and serving
            later = {p: _calls(control, p) for p in prompts}
            after_heal = client.submit(
                {"prompt": "Rename setting z in app.toml.", "max_tier": "low"}
            )
            assert after_heal.result(timeout=60).status == TaskStatus.succeeded
        assert [r.status for r in results] == [TaskStatus.succeeded] * len(prompts), [
            (r.id, r.status) for r in results if r.status != TaskStatus.succeeded
        ]
        assert later == settled, "a provider call was made after its task's result was committed"
        assert all(1 <= n <= 2 for n in settled.values()), settled
        assert pool_a.alive, "host a's pool did not survive the partition"
        reran = sum(1 for n in settled.values() if n == 2)
        print(f"partition: {reran} of {len(prompts)} hops were run again by host b")
    finally:
        if cluster is not None:
            cluster.stop()
        sim.stop()
        broker.stop()


def _worker_argv() -> list[str]:
    import sys

    return [
        sys.executable,
        "-m",
        "parjanya",
        "worker",
        "--tier",
        "low",
        "-c",
        "8",
        "--pool",
        "threads",
        "--loglevel",
        "INFO",
    ]
