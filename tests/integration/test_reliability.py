"""docs/RELIABILITY.md under real failures: kill -9, mixed settings, plain Celery workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from kombu import Connection

from parjanya.broker.amqp import is_amqp, ready_depth
from parjanya.client import Client, TaskNotFound
from parjanya.governance.priority import queue_depth
from parjanya.queues import queue_for
from parjanya.runtime.embedded_redis import EmbeddedRedis, free_port
from parjanya.schema import TaskStatus
from parjanya.sim.ledger import prompt_key
from parjanya.sim.server import SimServer
from parjanya.worker import chaos

from .conftest import (
    Cluster,
    SimControl,
    assert_store_placed,
    make_cluster,
    place_store,
    write_test_config,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def small_cluster(
    redis_url: str, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    running = make_cluster(redis_url, sim, tmp_path_factory.mktemp("reliability"))
    with running.serving("intake", "low"):
        yield running


@pytest.fixture
def store_db() -> int | None:
    """Where the scenarios with a broker of their own keep the store: None, in the broker's own
    database; `test_store_apart.py` collects them again with 1, another database of it."""
    return None


def _calls(sim_control: SimControl, prompt: str) -> int:
    entry = sim_control.stats()["per_prompt"].get(prompt_key(prompt), {})  # type: ignore[union-attr]
    return int(entry.get("total", 0)) if isinstance(entry, dict) else int(entry)


def _wait_status(client: Client, task_id: str, status: TaskStatus, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while client.status(task_id).status != status:
        assert time.monotonic() < deadline, f"never reached {status}"
        time.sleep(0.05)


def _kill_mid_call_and_recover(
    cluster: Cluster, sim_control: SimControl, redis_url: str, prompt: str
) -> tuple[Client, str, int, float]:
    client = Client(redis_url, config=cluster.config)
    handle = client.submit({"prompt": prompt, "max_tier": "low"})
    _wait_status(client, handle.id, TaskStatus.running, 30)
    time.sleep(0.5)  # the provider call is in flight

    low = next(p for p in cluster.pools if p.stage == "low" and p.alive)
    low.kill9()
    killed_at = time.monotonic()
    cluster.start("low")

    result = handle.result(timeout=60)
    recovered_in = time.monotonic() - killed_at
    assert result.status == TaskStatus.succeeded and result.tier_path == ["low"]
    limits = cluster.config.reliability
    # lease expiry + one reaper period + the 3 s call again + worker start-up slack
    assert recovered_in < limits.lease_ttl_s + limits.reaper_interval_s + 3 + 15
    calls = _calls(sim_control, prompt)
    assert calls <= 2  # the interrupted call and the one that finished
    return client, handle.id, calls, recovered_in


def test_kill_9_of_an_async_tier_pool_mid_call_then_restart_gives_exactly_one_result(
    redis_url: str, small_cluster: Cluster, sim_control: SimControl
) -> None:
    prompt = "Fix the typo in the changelog entry. [[sim:latency=3]]"
    client, task_id, calls, _ = _kill_mid_call_and_recover(
        small_cluster, sim_control, redis_url, prompt
    )
    # The message was acknowledged at hand-off, so nothing comes back later: the store's lease and
    # reaper did the recovery. Give a stray copy time to show up anyway, then check nothing ran.
    time.sleep(small_cluster.config.reliability.lease_ttl_s * 2)
    assert _calls(sim_control, prompt) == calls
    assert client.status(task_id).status == TaskStatus.succeeded
    client.close()


def test_kill_9_of_a_blocking_tier_pool_dedups_the_late_redelivery(
    redis_url: str,
    sim: SimServer,
    small_cluster: Cluster,
    sim_control: SimControl,
    tmp_path: Path,
) -> None:
    blocking = make_cluster(redis_url, sim, tmp_path, tier_dispatch="blocking")
    try:
        blocking.start("low", pool="threads")
        for pool in small_cluster.pools:  # only the blocking pool may serve parjanya.tier.low
            if pool.stage == "low" and pool.alive:
                pool.kill9()
        prompt = "Fix the typo in the license header. [[sim:latency=3]]"
        client, task_id, calls, _ = _kill_mid_call_and_recover(
            blocking, sim_control, redis_url, prompt
        )
        # Kombu restores the dead worker's unacked copy after the visibility timeout; the claim
        # must acknowledge it as a duplicate of a finished task, without another model call.
        before = client.store.counters().get("dedup_terminal", 0)
        limits = blocking.config.reliability
        deadline = time.monotonic() + limits.visibility_timeout_s + 25
        while client.store.counters().get("dedup_terminal", 0) == before:
            assert time.monotonic() < deadline, "the orphaned message was never redelivered"
            time.sleep(0.5)
        assert _calls(sim_control, prompt) == calls
        assert client.status(task_id).status == TaskStatus.succeeded
        client.close()
    finally:
        blocking.stop()
        small_cluster.start("low")


def test_a_worker_with_another_visibility_timeout_refuses_to_start(
    redis_url: str, small_cluster: Cluster, sim: SimServer, tmp_path: Path
) -> None:
    other = write_test_config(tmp_path / "other.yaml", sim.base_url, visibility_timeout_s=45.0)
    env = {**small_cluster.env, "PARJANYA_CONFIG": str(other)}
    finished = subprocess.run(
        [sys.executable, "-m", "parjanya", "worker", "--tier", "high", "--pool", "solo"],
        env=env,
        capture_output=True,
        timeout=60,
        text=True,
    )
    assert finished.returncode != 0
    assert "refusing to start" in finished.stdout + finished.stderr


def test_plain_celery_worker_command_serves_a_tier_queue(
    redis_url: str, small_cluster: Cluster
) -> None:
    small_cluster.start(
        "mid",
        argv=[
            sys.executable,
            "-m",
            "celery",
            "-A",
            "parjanya.app",
            "worker",
            "-Q",
            "parjanya.tier.mid",
            "-P",
            "threads",
            "-c",
            "2",
            "-l",
            "INFO",
            "--without-mingle",
            "--without-gossip",
        ],
    )
    with Client(redis_url, config=small_cluster.config) as client:
        result = client.submit(
            {"prompt": "Explain this stack trace briefly.", "min_tier": "mid", "max_tier": "mid"}
        ).result(timeout=30)
    assert result.status == TaskStatus.succeeded and result.tier_path == ["mid"]


def _kill_broker_mid_flight(
    sim: SimServer,
    tmp_path: Path,
    *,
    appendonly: bool,
    store_db: int | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> list[TaskStatus | str]:
    data = tmp_path / "redis"
    broker = EmbeddedRedis(free_port(), data, appendonly=appendonly).start()
    (tmp_path / "cluster").mkdir()
    cluster = make_cluster(broker.url, sim, tmp_path / "cluster")
    if monkeypatch is not None:
        place_store(cluster, broker.url, store_db, monkeypatch)
    outcomes: list[TaskStatus | str] = []
    try:
        cluster.start("intake")
        cluster.start("low")
        client = Client(broker.url, config=cluster.config)
        handles = [
            client.submit(
                {"prompt": f"Fix typo {i} in NOTES. [[sim:latency=1]]", "max_tier": "low"}
            )
            for i in range(20)
        ]
        time.sleep(0.6)  # some hops are running, others still queued
        broker.kill()
        time.sleep(1.0)
        broker = EmbeddedRedis(broker.port, data, appendonly=appendonly).start()
        for handle in handles:
            try:
                outcomes.append(handle.result(timeout=90).status)
            except TaskNotFound:
                outcomes.append("lost")
        client.close()
        assert_store_placed(broker.url, store_db)
    finally:
        cluster.stop()
        broker.stop()
    return outcomes


def test_broker_kill_9_with_aof_loses_nothing_queued_or_running(
    sim: SimServer, tmp_path: Path, store_db: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/RELIABILITY.md T7: redis-server SIGKILL, tasks queued and running; restart; lost = 0."""
    outcomes = _kill_broker_mid_flight(
        sim, tmp_path, appendonly=True, store_db=store_db, monkeypatch=monkeypatch
    )
    assert outcomes == [TaskStatus.succeeded] * 20


@pytest.mark.slow
def test_control_without_persistence_the_same_crash_loses_tasks(
    sim: SimServer, tmp_path: Path
) -> None:
    """The control that proves the test above can fail: no AOF, and the same crash loses work.

    Marked slow (half a minute of waiting on lost tasks; `pytest -m slow`): it tests the test."""
    outcomes = _kill_broker_mid_flight(sim, tmp_path, appendonly=False)
    assert outcomes.count("lost") > 0


def test_a_connection_blip_mid_call_runs_nothing_twice(
    redis_url: str, small_cluster: Cluster, sim_control: SimControl
) -> None:
    """docs/RELIABILITY.md T6: CLIENT KILL of every connection while calls are in flight.

    With Celery's acks_late a blip pushes unacked messages back while their tasks keep running, so
    they run twice in parallel. Tier pools here acknowledge at hand-off and the store holds the hop:
    each task must finish, once. A hop whose commit hit the dead connection is left to its lease
    and retried by the reaper, so a task may pay a second call (docs/RELIABILITY.md: <= 2 where a
    kill or blip interrupted it), never a third, and is never dead-lettered for it.
    """
    with Client(redis_url, config=small_cluster.config) as client:
        prompts = [f"Fix the lint warning {i} in app.py. [[sim:latency=2]]" for i in range(20)]
        handles = [client.submit({"prompt": p, "max_tier": "low"}) for p in prompts]
        deadline = time.monotonic() + 30
        # the test pool holds 4 calls in flight (-c 4): wait until all 4 are out
        while sum(client.status(h.id).status == TaskStatus.running for h in handles) < 4:
            assert time.monotonic() < deadline, [client.status(h.id).status for h in handles]
            time.sleep(0.05)
        killed = redis.Redis.from_url(redis_url).client_kill_filter(_type="normal")
        assert killed > 0
        results = [h.result(timeout=60) for h in handles]
    assert [r.status for r in results] == [TaskStatus.succeeded] * 20, [
        (r.error, [(a.stage, a.outcome, a.error_type, a.error) for a in r.attempts])
        for r in results
        if r.status != TaskStatus.succeeded
    ]
    assert all(_calls(sim_control, p) <= 2 for p in prompts), [
        (r.timings, r.attempts)
        for p, r in zip(prompts, results, strict=True)
        if _calls(sim_control, p) > 2
    ]


def _depth_of(broker_url: str, queue: str) -> Callable[[], int]:
    """How many messages wait on `queue`, every SLA class together, on Redis or RabbitMQ."""
    if is_amqp(broker_url):
        connection = Connection(broker_url)
        return lambda: ready_depth(connection, queue)
    broker = redis.Redis.from_url(broker_url)
    return lambda: queue_depth(broker, queue)


def _wait_backed_up(depth: Callable[[], int], queue: str, timeout_s: float) -> None:
    """Wait until `queue` keeps a backlog: then every pool on it has its slots and its admission
    backlog full (a feeder pops whenever its dispatcher has room, `worker/feeder.py`), so a
    stopping pool holds hops it claimed but has not started."""
    deadline, since = time.monotonic() + timeout_s, None
    while True:
        backed_up = depth() > 0  # every SLA class's list (or RabbitMQ queue) of it
        now = time.monotonic()
        since = (since or now) if backed_up else None
        if since is not None and now - since >= 0.3:
            return
        assert now < deadline, f"{queue} never backed up: the pools were never full"
        time.sleep(0.05)


def test_a_rolling_restart_under_load_loses_nothing_and_runs_nothing_twice(
    sim: SimServer,
    sim_control: SimControl,
    tmp_path: Path,
    store_db: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/RELIABILITY.md T8: SIGTERM each tier pool in turn while calls are in flight and queued.

    A stopping pool finishes the calls it started (no call is cut off, so none runs twice), hands
    back at once the hops it claimed but had not started, and exits within the soft-shutdown
    window; no task waits longer than that window for its result.

    Each SIGTERM waits for its condition rather than a fixed time: a wave of 3 s calls larger than
    every running pool's slots and backlog together, and the queue backed up behind them, so the
    pool stopped holds hops admitted beyond its slots. (A fixed 1.5 s once found the intake still
    behind on a loaded machine: no pool was full, and nothing was there to hand back.)
    """
    broker = EmbeddedRedis(free_port(), tmp_path / "redis", appendonly=False).start()
    redis_url = broker.url  # its own broker: no other test's pools may take these hops
    cluster = make_cluster(redis_url, sim, tmp_path)
    place_store(cluster, redis_url, store_db, monkeypatch)
    soft_shutdown_s = 30.0  # the worker's drain bound (tasks/lifecycle.py)
    slots, backlog = 40, 4  # -c 40, and the dispatcher's backlog of a tenth (worker/dispatch.py)
    queue = queue_for("low")
    depth = _depth_of(redis_url, queue)  # the scenario runs on RabbitMQ too (test_rabbitmq.py)
    try:
        cluster.start("intake")
        first = cluster.start("low", concurrency=slots)
        second = cluster.start("low", concurrency=slots)
        prompts: list[str] = []
        with Client(redis_url, config=cluster.config) as client:
            handles = []
            for wave, old in enumerate((first, second)):
                # two pools serve the queue at each stop: one wave overfills both
                more = [
                    f"Rename field {i} of wave {wave} in the invoice model. [[sim:latency=3]]"
                    for i in range(3 * (slots + backlog))
                ]
                handles += [client.submit({"prompt": p, "max_tier": "low"}) for p in more]
                prompts += more
                _wait_backed_up(depth, queue, timeout_s=60)
                stopping_since = time.monotonic()
                os.killpg(old.process.pid, signal.SIGTERM)
                cluster.start("low", concurrency=slots)
                old.process.wait(timeout=soft_shutdown_s + 10)
                assert time.monotonic() - stopping_since < soft_shutdown_s
            results = [h.result(timeout=90) for h in handles]
        assert [r.status for r in results] == [TaskStatus.succeeded] * len(prompts)
        assert all(_calls(sim_control, p) == 1 for p in prompts), [
            _calls(sim_control, p) for p in prompts if _calls(sim_control, p) != 1
        ]
        waits = [(r.finished_at - r.created_at).total_seconds() for r in results if r.finished_at]
        assert len(waits) == len(prompts) and max(waits) < soft_shutdown_s, max(waits)
        for old in (first, second):
            log = old.log.read_text(errors="replace")
            assert "hops still running at shutdown" not in log
            # the hops admitted beyond the slots went back at the SIGTERM, not to a lease
            assert log.count("given back: worker shutting down") >= 1, old.log
        assert_store_placed(redis_url, store_db)
    finally:
        cluster.stop()
        broker.stop()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _restart(cluster: Cluster, stage: str) -> None:
    """Start a pool again. It may die before it reports ready (on RabbitMQ Celery's consumer is
    handed the poison hop as soon as it connects): that is one more death, seen next round."""
    try:
        cluster.start(stage)
    except RuntimeError:
        if cluster.pools[-1].alive:
            raise


def test_a_task_that_kills_its_worker_every_time_is_dead_lettered_as_poison(
    sim: SimServer,
    sim_control: SimControl,
    tmp_path: Path,
    store_db: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/RELIABILITY.md T3: a hop whose worker dies on it (SIGKILL, as an OOM kill), every time.

    A supervisor restarts the pool; the reaper hands the hop out again after each lease; the store
    counts deliveries and, past the cap, dead-letters it as poison without running it. After
    `isolate_after` deaths it runs alone, so it stops taking its neighbours down with it, and the
    neighbours it claimed beside it go back uncounted: they all finish, each paying at most one
    extra call per death it shared. The pool left running is idle, not spinning.
    """
    broker = EmbeddedRedis(free_port(), tmp_path / "redis", appendonly=False).start()
    redis_url = broker.url  # its own broker: only the chaos pool may take the poison hop
    cluster = make_cluster(redis_url, sim, tmp_path)
    place_store(cluster, redis_url, store_db, monkeypatch)
    try:
        cluster.start("intake")
        cluster.env[chaos.KILL_ON_ENV] = "KILL-THIS-WORKER"
        cluster.start("low")
        with Client(redis_url, config=cluster.config) as client:
            poison = client.submit(
                {"prompt": "Summarise the log. KILL-THIS-WORKER", "max_tier": "low"}
            )
            others = [
                client.submit({"prompt": f"Rename helper {i} in utils.py.", "max_tier": "low"})
                for i in range(10)
            ]
            restarts, deadline = 0, time.monotonic() + 120
            while not client.status(poison.id).status.terminal:
                assert time.monotonic() < deadline, client.status(poison.id)
                if not cluster.pools[-1].alive:
                    restarts += 1
                    _restart(cluster, "low")  # what a supervisor (compose, Kubernetes) does
                time.sleep(0.1)
            result = poison.result(timeout=5)
            settled = [h.result(timeout=60) for h in others]
        limit = cluster.config.reliability.max_deliveries
        shared_deaths = cluster.config.reliability.isolate_after
        assert result.status == TaskStatus.dead_lettered and result.error is not None
        assert result.error.type == "poison", result.error
        assert 1 <= restarts <= limit  # one death per delivery, until the cap
        assert (
            _calls(sim_control, "Summarise the log. KILL-THIS-WORKER") == 0
        )  # died before calling
        failed = [(r.id, r.error, len(r.attempts)) for r in settled if r.status != "succeeded"]
        assert not failed, failed
        calls = [_calls(sim_control, f"Rename helper {i} in utils.py.") for i in range(10)]
        assert all(1 <= n <= 1 + shared_deaths for n in calls), calls
        logs = "".join(pool.log.read_text(errors="replace") for pool in cluster.pools)
        assert f"hop {poison.id}/1 was in flight in {shared_deaths} workers that died" in logs
        survivor = cluster.pools[-1]
        assert survivor.alive
        before = _cpu_seconds(survivor.process.pid)
        time.sleep(2.0)
        assert _cpu_seconds(survivor.process.pid) - before < 1.0  # idle, not pinned
        assert_store_placed(redis_url, store_db)
    finally:
        cluster.stop()
        broker.stop()
