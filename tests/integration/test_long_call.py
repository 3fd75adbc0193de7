"""docs/RELIABILITY.md T5: a model call three times as long as the lease, held by heartbeats.

A hop's lease (`reliability.lease_ttl_s`, 2 s here) is far shorter than a slow model call may be.
The worker's renewer (`worker/lease.py`) extends every lease it holds each third of the lease, so
a call of three leases keeps its hop: the reaper, sweeping every half second, must never judge it
lapsed and republish it, and the provider must be called exactly once per task. Both dispatch
modes hold their hops through the same renewer; each is run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from parjanya.client import Client
from parjanya.runtime.embedded_redis import EmbeddedRedis, free_port
from parjanya.schema import TaskStatus
from parjanya.sim.ledger import prompt_key
from parjanya.sim.server import SimServer

from .conftest import SimControl, make_cluster

pytestmark = pytest.mark.integration

LEASE_TTL_S = 2.0
CALL_S = 3 * LEASE_TTL_S
TASKS = 6


def _calls(sim_control: SimControl, prompt: str) -> int:
    entry = sim_control.stats()["per_prompt"].get(prompt_key(prompt), {})  # type: ignore[union-attr]
    return int(entry.get("total", 0)) if isinstance(entry, dict) else int(entry)


def _slow_deployments(raw: dict[str, Any]) -> None:
    """The deployments wait out a call of three leases (the test config cuts them off at 5 s)."""
    for tier in raw["tiers"].values():
        for deployment in tier["deployments"]:
            deployment["timeout_s"] = CALL_S * 3


@pytest.mark.parametrize("dispatch", ["async", "blocking"])
def test_a_call_three_times_the_lease_is_held_by_heartbeats_and_runs_once(
    dispatch: str, sim: SimServer, sim_control: SimControl, tmp_path: Path
) -> None:
    broker = EmbeddedRedis(free_port(), tmp_path / "redis", appendonly=False).start()
    cluster = make_cluster(
        broker.url,
        sim,
        tmp_path,
        mutate=_slow_deployments,
        lease_ttl_s=LEASE_TTL_S,
        task_time_limit_s=CALL_S * 5,
        visibility_timeout_s=CALL_S * 10,
        tier_dispatch=dispatch,
    )
    prompts = [
        f"Rename the slow {dispatch} field {i} in the ledger. [[sim:latency={CALL_S}]]"
        for i in range(TASKS)
    ]
    try:
        cluster.start("intake")
        cluster.start("low", concurrency=TASKS)
        with Client(broker.url, config=cluster.config) as client:
            started = time.monotonic()
            handles = [client.submit({"prompt": p, "max_tier": "low"}) for p in prompts]
            results = [h.result(timeout=CALL_S * 10) for h in handles]
            took = time.monotonic() - started
            republished = client.store.counters().get("reaper_republished", 0)
        assert [r.status for r in results] == [TaskStatus.succeeded] * TASKS, [
            (r.status, r.error) for r in results if r.status != TaskStatus.succeeded
        ]
        assert took >= CALL_S  # the calls did outlast the lease, three times over
        calls = {p: _calls(sim_control, p) for p in prompts}
        assert all(n == 1 for n in calls.values()), calls
        assert republished == 0
        logs = "".join(pool.log.read_text(errors="replace") for pool in cluster.pools)
        assert "lease expired or never picked up" not in logs  # the reaper took nothing back
    finally:
        cluster.stop()
        broker.stop()
