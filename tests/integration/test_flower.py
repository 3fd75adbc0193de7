"""Flower sees everything: each pool with its queue, every hop by name, every queue's length.

Real parts: the four pools started with task events on (`parjanya worker --events`), the sim on
HTTP, and `parjanya flower` on a free port, read only through Flower's HTTP API and pages.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from parjanya.client import Client
from parjanya.queues import ALL_DEAD_LETTER_QUEUES, ALL_WORK_QUEUES, queue_for
from parjanya.runtime.embedded_redis import free_port
from parjanya.schema import TaskRequest, TaskStatus
from parjanya.sim.server import SimServer

from .conftest import Cluster, make_cluster

pytestmark = pytest.mark.integration

SECRET = "zebra-kumquat-7781"  # prompt text that must never reach Flower


def _worker_argv(stage: str) -> list[str]:
    flag = ["--classifier"] if stage == "intake" else ["--tier", stage]
    return [sys.executable, "-m", "parjanya", "worker", *flag, "-c", "4", "--events"]


def _eventually(check: Callable[[], Any], timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout_s}s; last: {last!r}")


@pytest.fixture(scope="module")
def watched(
    redis_url: str, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Cluster, httpx.Client]]:
    tmp = tmp_path_factory.mktemp("flower")
    cluster = make_cluster(redis_url, sim, tmp)
    port = free_port()
    log = tmp / "flower.log"
    with log.open("wb") as out:
        flower = subprocess.Popen(
            [sys.executable, "-m", "parjanya", "flower", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            # Flower's HTTP API answers without a login only when told to (loopback here).
            env={**cluster.env, "FLOWER_UNAUTHENTICATED_API": "true"},
            start_new_session=True,
            cwd=tmp,
        )
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        for stage in ("intake", "low", "mid", "high"):
            cluster.start(stage, argv=_worker_argv(stage))

        def all_pools_listed() -> bool:
            try:
                workers = http.get("/api/workers", params={"refresh": "1"}).json()
            except (httpx.HTTPError, ValueError):
                return False
            return len(workers) >= 4

        _eventually(all_pools_listed, 90)
        yield cluster, http
    finally:
        http.close()
        if flower.poll() is None:
            os.killpg(flower.pid, signal.SIGTERM)
            try:
                flower.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(flower.pid, signal.SIGKILL)
        cluster.stop()
        print(Path(log).read_text()[-2000:])


def test_flower_lists_each_pool_with_its_queue_every_hop_and_queue_lengths(
    watched: tuple[Cluster, httpx.Client], redis_url: str
) -> None:
    cluster, http = watched
    with Client(redis_url, config=cluster.config) as client:
        handles = [
            client.submit(TaskRequest(prompt=f"Rename a variable {SECRET} {i}.", tenant="acme"))
            for i in range(3)
        ]
        results = [h.result(timeout=60) for h in handles]
    assert all(r.status == TaskStatus.succeeded for r in results), [r.error for r in results]
    # One hostile entry on a tier queue: the pool dead-letters it, so a DLQ has a length.
    redis.Redis.from_url(redis_url).lpush(queue_for("low"), b"not a message")

    # Workers page: each pool reports the queue it serves (a feeder's, not Celery's consumer's).
    workers = http.get("/api/workers", params={"refresh": "1"}).json()
    served = {
        name: {q["name"] for q in info.get("active_queues") or []} for name, info in workers.items()
    }
    for stage in ("intake", "low", "mid", "high"):
        queue = queue_for(stage)  # type: ignore[arg-type]
        assert any(queues == {queue} for queues in served.values()), (queue, served)

    # Tasks page: every hop by a readable name, with tier and tenant, its state and runtime.
    ids = {r.id for r in results}

    def hops_of_our_tasks() -> list[dict[str, Any]]:
        tasks = http.get("/api/tasks", params={"limit": "1000"}).json()
        # One Flower task per hop, `<task id>.<hop>`, whoever delivered it (a feeder or Celery's
        # consumer, whose own events for the admission are off).
        mine = [t for uuid, t in tasks.items() if uuid.split(".")[0] in ids]
        done = [t for t in mine if t.get("state") == "SUCCESS"]
        tiers = [t for t in done if str(t.get("name", "")).startswith("parjanya.tier.")]
        intakes = [t for t in done if t.get("name") == "parjanya.intake"]
        strangers = [u for u in tasks if u.split(".")[0] not in ids]  # this Flower saw only ours
        assert not strangers, [tasks[u] for u in strangers]
        return mine if len(tiers) >= 3 and len(intakes) >= 3 else []

    mine = _eventually(hops_of_our_tasks, 30)
    assert all(t["uuid"].split(".")[0] in ids for t in mine)
    assert all("'acme'" in t["args"] for t in mine), [t["args"] for t in mine]
    tier_hop = next(t for t in mine if str(t["name"]).startswith("parjanya.tier."))
    tier = str(tier_hop["name"]).rsplit(".", 1)[1]
    assert repr(tier) in tier_hop["args"] and "'acme'" in tier_hop["args"], tier_hop
    assert tier_hop["runtime"] is not None and tier_hop["runtime"] >= 0
    assert tier_hop["worker"], tier_hop
    assert all(SECRET not in repr(t) for t in mine)

    # Broker page and API: every Parjanya queue with its length, dead letters included.
    def dlq_counted() -> dict[str, int]:
        lengths = http.get("/api/queues/length").json()["active_queues"]
        by_name = {q["name"]: q["messages"] for q in lengths}
        return by_name if by_name.get("parjanya.dlq.low", 0) >= 1 else {}

    by_name = _eventually(dlq_counted, 30)
    assert set(ALL_WORK_QUEUES + ALL_DEAD_LETTER_QUEUES) <= set(by_name), by_name
    assert all(isinstance(n, int) and n >= 0 for n in by_name.values())
    page = http.get("/broker")
    assert page.status_code == 200, page.text[:500]
    assert all(q in page.text for q in ALL_DEAD_LETTER_QUEUES)
