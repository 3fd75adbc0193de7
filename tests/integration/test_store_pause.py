"""docs/RELIABILITY.md mode 5: the store stops answering for less than a lease, and nobody dies.

The store's redis-server is stopped (SIGSTOP: connections stay open, nothing answers, as in a long
fork, a swap storm or a paused VM) for five sixths of the lease, then continued. Renewed every
third of the lease, every lease held across the pause has lapsed by the clock when the store
answers again: only the renewer retrying at once, and the reaper holding back after the store
was away (`worker/reaper.py`), keep it. No worker dies, so no hop may run twice: each task calls
the provider exactly once.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from parjanya.client import Client
from parjanya.runtime.embedded_redis import EmbeddedRedis, free_port
from parjanya.schema import TaskStatus
from parjanya.sim.ledger import prompt_key
from parjanya.sim.server import SimServer

from .conftest import SimControl, make_cluster

pytestmark = pytest.mark.integration

LEASE_TTL_S = 6.0
PAUSE_S = 5.0  # less than the lease; more than two renewal periods (a third of the lease each)


def _calls(sim_control: SimControl, prompt: str) -> int:
    entry = sim_control.stats()["per_prompt"].get(prompt_key(prompt), {})  # type: ignore[union-attr]
    return int(entry.get("total", 0)) if isinstance(entry, dict) else int(entry)


def test_a_store_pause_shorter_than_the_lease_repeats_no_call(
    sim: SimServer, sim_control: SimControl, tmp_path: Path
) -> None:
    server = EmbeddedRedis(free_port(), tmp_path / "redis", appendonly=False).start()
    assert server.process is not None
    cluster = make_cluster(server.url, sim, tmp_path, lease_ttl_s=LEASE_TTL_S)
    slots = 8
    try:
        cluster.start("intake")
        cluster.start("low", concurrency=slots)
        with Client(server.url, config=cluster.config) as client:
            # calls in flight across the pause, others finishing (committing) inside it, and
            # others queued behind them, claimed around it
            prompts = [
                f"Fix the lint warning {i} in billing.py. [[sim:latency={1 + i % 3}]]"
                for i in range(3 * slots)
            ]
            handles = [client.submit({"prompt": p, "max_tier": "low"}) for p in prompts]
            deadline = time.monotonic() + 60
            while sum(client.status(h.id).status == TaskStatus.running for h in handles) < slots:
                assert time.monotonic() < deadline, "the pool never filled"
                time.sleep(0.05)
            os.kill(server.process.pid, signal.SIGSTOP)
            try:
                time.sleep(PAUSE_S)
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
            results = [h.result(timeout=120) for h in handles]
        assert [r.status for r in results] == [TaskStatus.succeeded] * len(prompts), [
            (r.status, r.error) for r in results if r.status != TaskStatus.succeeded
        ]
        calls = {p: _calls(sim_control, p) for p in prompts}
        assert all(n == 1 for n in calls.values()), {p: n for p, n in calls.items() if n != 1}
        logs = "".join(pool.log.read_text(errors="replace") for pool in cluster.pools)
        assert "lease expired or never picked up" not in logs  # the reaper took nothing back
    finally:
        cluster.stop()
        server.stop()
