"""Liveness: a worker that can no longer serve exits non-zero; leases outlive a store shorter paused."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from parjanya.client import Client
from parjanya.runtime.embedded_redis import EmbeddedRedis, free_port
from parjanya.schema import TaskStatus
from parjanya.sim.ledger import prompt_key
from parjanya.sim.server import SimServer
from parjanya.worker.liveness import EXIT_DEAF

from .conftest import SimControl, make_cluster


def _calls(sim_control: SimControl, prompt: str) -> int:
    entry = sim_control.stats()["per_prompt"].get(prompt_key(prompt), {})  # type: ignore[union-attr]
    return int(entry.get("total", 0)) if isinstance(entry, dict) else int(entry)


pytestmark = pytest.mark.integration

#: The public CLI, except that the tier feeder's thread ends on its third pass, as a thread killed
#: by an error nobody caught would (a BaseException gets past every `except Exception`).
DYING_FEEDER = """
import parjanya.worker.feeder as feeder
passes = [0]
step = feeder.QueueFeeder.step
def dying_step(self):
    passes[0] += 1
    if passes[0] > 2 and self.queue != "parjanya.intake":
        raise SystemExit("feeder thread killed by the test")
    return step(self)
feeder.QueueFeeder.step = dying_step
from parjanya.cli.main import app
app(["worker", "--tier", "low", "--loglevel", "INFO"])
"""


def test_a_worker_whose_feeder_thread_dies_exits_non_zero(sim: SimServer, tmp_path: Path) -> None:
    broker = EmbeddedRedis(free_port(), tmp_path / "redis", appendonly=False).start()
    cluster = make_cluster(broker.url, sim, tmp_path, liveness_stale_s=3.0)
    try:
        pool = cluster.start("low", argv=[sys.executable, "-c", DYING_FEEDER])
        deadline = time.monotonic() + 60
        while pool.alive:
            assert time.monotonic() < deadline, pool.log.read_text()[-3000:]
            time.sleep(0.2)
        log = pool.log.read_text(errors="replace")
        assert pool.process.returncode == EXIT_DEAF, log[-3000:]
        assert "feeder parjanya.tier.low" in log and "exiting for a restart" in log
    finally:
        cluster.stop()
        broker.stop()


def test_a_store_paused_for_less_than_the_lease_repeats_no_call(
    sim: SimServer, sim_control: SimControl, tmp_path: Path
) -> None:
    """redis-server stopped (SIGSTOP) for most of a lease while calls are in flight and finishing.

    Renewals and commits fail or hang meanwhile; once it resumes, renewals must land before any
    lease lapses, so the reaper hands no running hop to anyone and no model is called twice.
    """
    broker = EmbeddedRedis(free_port(), tmp_path / "redis", appendonly=False).start()
    lease_s = 4.0
    cluster = make_cluster(broker.url, sim, tmp_path, lease_ttl_s=lease_s)
    try:
        cluster.start("intake")
        cluster.start("low", concurrency=20)
        with Client(broker.url, config=cluster.config) as client:
            prompts = [
                f"Rename the argument {i} in fetch_rows. [[sim:latency=2]]" for i in range(20)
            ]
            handles = [client.submit({"prompt": p, "max_tier": "low"}) for p in prompts]
            deadline = time.monotonic() + 30
            while sum(client.status(h.id).status == TaskStatus.running for h in handles) < 10:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            time.sleep(1.0)  # leases were renewed; some calls are about to end
            os.kill(broker.process.pid, signal.SIGSTOP)
            time.sleep(lease_s - 1.0)
            os.kill(broker.process.pid, signal.SIGCONT)
            results = [h.result(timeout=60) for h in handles]
        assert [r.status for r in results] == [TaskStatus.succeeded] * len(prompts)
        calls = [_calls(sim_control, p) for p in prompts]
        assert calls == [1] * len(prompts), calls
    finally:
        cluster.stop()
        broker.stop()
