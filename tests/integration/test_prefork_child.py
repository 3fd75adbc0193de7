"""docs/RELIABILITY.md T2: SIGKILL of one prefork child of the classifier, and nothing else.

The classifier's hops run in Celery's prefork children. The kernel's OOM killer takes one child
alone: the pool's main process lives on, forks a replacement, and Celery rejects the dead child's
message back to the queue (`task_reject_on_worker_lost`). The hop's lease, taken by the child,
lapses with nobody to renew it; the redelivered copy or the reaper's republish runs it in another
child. Every task must finish, and the classification redone must not show up as a second model
call: the dead child never committed, so only one tier hop is ever queued per task.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from parjanya.client import Client
from parjanya.governance.priority import queue_depth
from parjanya.queues import queue_for
from parjanya.runtime.embedded_redis import EmbeddedRedis, free_port
from parjanya.schema import TaskStatus
from parjanya.sim.ledger import prompt_key
from parjanya.sim.server import SimServer

from .conftest import Cluster, Pool, SimControl, make_cluster

pytestmark = pytest.mark.integration

CHILDREN = 2
#: Tasks submitted whenever the intake queue runs low, before a kill.
BATCH = 200
#: Enough text that classifying it keeps a child busy for a few milliseconds per hop.
FILLER = "The nightly export job logs a warning about a missing column in the report table. " * 60
LOST = "WorkerLostError"


def _calls(sim_control: SimControl, prompt: str) -> int:
    entry = sim_control.stats()["per_prompt"].get(prompt_key(prompt), {})  # type: ignore[union-attr]
    return int(entry.get("total", 0)) if isinstance(entry, dict) else int(entry)


@pytest.fixture
def classifier_apart(sim: SimServer, tmp_path: Path) -> Iterator[tuple[Cluster, Pool, str]]:
    """Its own broker, a prefork classifier of two children and one low pool.

    Celery's consumer alone (`feeder_batch: 0`): with a feeder the main process would pop the
    intake queue itself and the children would sit idle."""
    broker = EmbeddedRedis(free_port(), tmp_path / "redis", appendonly=False).start()
    cluster = make_cluster(broker.url, sim, tmp_path, feeder_batch=0)
    try:
        classifier = cluster.start("intake", concurrency=CHILDREN, pool="prefork")
        cluster.start("low", concurrency=8)
        yield cluster, classifier, broker.url
    finally:
        cluster.stop()
        broker.stop()


def _children(pool: Pool) -> set[int]:
    """The pool's live child processes, from /proc (a zombie not yet reaped is not one)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pool.process.pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def _started(pid: int) -> int:
    """When a process started (clock ticks after boot; /proc/<pid>/stat field 22)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def _wait_children(pool: Pool, without: int, timeout_s: float = 30) -> set[int]:
    """The pool's children once it has its full count again, the killed one not among them."""
    deadline = time.monotonic() + timeout_s
    while True:
        children = _children(pool)
        if len(children) == CHILDREN and without not in children:
            return children
        assert time.monotonic() < deadline, f"no replacement child: {children}"
        time.sleep(0.05)


def test_sigkill_of_one_prefork_child_loses_nothing_and_calls_nothing_twice(
    classifier_apart: tuple[Cluster, Pool, str], sim_control: SimControl
) -> None:
    cluster, classifier, broker_url = classifier_apart
    broker = redis.Redis.from_url(broker_url)
    prompts: list[str] = []
    killed: list[int] = []
    with Client(broker_url, config=cluster.config) as client:
        handles = []
        # Kill one child at a time while the intake queue is backed up (topped up before each
        # kill, so both children are busy whatever the machine's speed), until the pool reports
        # a child lost with a hop in its hands (Celery's WorkerLostError): that hop must survive.
        while LOST not in classifier.log.read_text(errors="replace"):
            assert len(killed) < 8, "no kill caught a child holding a hop"
            if queue_depth(broker, queue_for("intake")) < BATCH // 2:
                more = [
                    f"Rename report column {len(prompts) + i} in the export job. {FILLER}"
                    for i in range(BATCH)
                ]
                handles += [client.submit({"prompt": p, "max_tier": "low"}) for p in more]
                prompts += more
            children = _children(classifier)
            assert len(children) == CHILDREN, children
            # the child alive longest: a replacement still booting holds no hop yet
            victim = min(children, key=_started)
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)
            survivors = _wait_children(classifier, without=victim)
            assert children - {victim} <= survivors  # only the one child died
            time.sleep(0.5)  # Celery logs the lost job once it has reaped the child
        assert classifier.alive
        # Celery's consumer kept the intake queue beside the feeder: it fed the children.
        assert f"Canceling queue {queue_for('intake')}" not in classifier.log.read_text()
        results = [h.result(timeout=120) for h in handles]
        after = client.submit(
            {"prompt": "Rename the export job after the kill.", "max_tier": "low"}
        )
        assert after.result(timeout=60).status == TaskStatus.succeeded  # the pool still serves
    assert [r.status for r in results] == [TaskStatus.succeeded] * len(prompts), [
        (r.id, r.status, r.error) for r in results if r.status != TaskStatus.succeeded
    ]
    calls = [_calls(sim_control, p) for p in prompts]
    assert calls == [1] * len(prompts), [(i, n) for i, n in enumerate(calls) if n != 1]
    assert all(r.tier_path == ["low"] for r in results)
