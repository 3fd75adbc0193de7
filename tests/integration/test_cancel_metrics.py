"""Cancelled tasks on /metrics over HTTP: each counted once, by the process that ended it.

The classifier and the low and mid pools serve /metrics on ports of their own, and so does
`parjanya api`; the high pool is started only once a task waits on its queue. A task cancelled
while running on a slow low tier ends at its hop boundary in the low pool, which counts it; one
cancelled while queued for high ends in the API, which counts it; the high pool that later takes
its message finds it ended and counts nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from parjanya.runtime.embedded_redis import free_port
from parjanya.sim import SimServer, latency_marker

from .conftest import Cluster, make_cluster, serving_api
from .test_metrics import scrape, total

pytestmark = pytest.mark.integration

CANCELLED = "parjanya_tasks_total"


def _pool_argv(stage: str, port: int) -> list[str]:
    flag = ["--classifier"] if stage == "intake" else ["--tier", stage, "--pool", "threads"]
    return [
        sys.executable,
        "-m",
        "parjanya",
        "worker",
        *flag,
        "-c",
        "4",
        "--metrics-port",
        str(port),
    ]


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {stage: free_port() for stage in ("intake", "low", "mid", "high", "api", "api-metrics")}


@pytest.fixture(scope="module")
def cancelling(
    redis_url: str, sim: SimServer, tmp_path_factory: pytest.TempPathFactory, ports: dict[str, int]
) -> Iterator[Cluster]:
    cluster = make_cluster(redis_url, sim, tmp_path_factory.mktemp("cancel-metrics"))
    try:
        for stage in ("intake", "low", "mid"):
            cluster.start(stage, argv=_pool_argv(stage, ports[stage]))
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def http(cancelling: Cluster, ports: dict[str, int]) -> Iterator[httpx.Client]:
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "parjanya",
            "keys",
            "create",
            "--tenant",
            "cancel-metrics",
            "--json",
        ],
        env=cancelling.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    key = json.loads(made.stdout)["key"]
    api = serving_api(cancelling, ports["api"], "--metrics-port", str(ports["api-metrics"]))
    headers = {"Authorization": f"Bearer {key}"}
    with api as url, httpx.Client(base_url=url, timeout=60, headers=headers) as client:
        yield client


def _wait_for(check: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_cancelled_tasks_are_counted_once_each_on_the_metrics_of_who_ended_them(
    http: httpx.Client, cancelling: Cluster, ports: dict[str, int]
) -> None:
    counted = {
        stage: total(scrape(ports[stage]), CANCELLED, status="cancelled")
        for stage in ("intake", "low", "mid")
    }
    assert counted == {"intake": 0, "low": 0, "mid": 0}
    api_before = total(scrape(ports["api-metrics"]), CANCELLED, status="cancelled")

    # Queued: routed to high, whose pool is not running yet; the API ends it at once.
    queued = http.post(
        "/v1/tasks",
        json={"prompt": "Plan the ledger shard split, queued.", "min_tier": "high"},
    ).json()["id"]
    _wait_for(
        lambda: (
            [t["stage"] for t in http.get(f"/v1/tasks/{queued}").json()["timings"]]
            == ["intake", "high"]
        ),
        "the task was never routed to the high queue",
    )
    # Running: a hopeless answer on a slow low tier would escalate; the cancel lands meanwhile.
    prompt = f"Fix the typo in the ledger page title. [[sim:difficulty=0.99]] {latency_marker(2)}"
    running = http.post("/v1/tasks", json={"prompt": prompt, "max_tier": "mid"}).json()["id"]
    _wait_for(
        lambda: http.get(f"/v1/tasks/{running}").json()["status"] == "running",
        "the task never started running",
    )

    assert http.delete(f"/v1/tasks/{queued}").json()["outcome"] == "cancelled"
    requested = http.delete(f"/v1/tasks/{running}")
    assert requested.status_code == 202 and requested.json()["outcome"] == "requested"
    for task_id in (queued, running):
        ended = http.get(f"/v1/tasks/{task_id}", params={"wait": 30}).json()
        assert ended["status"] == "cancelled", ended

    # The high pool takes the queued task's message now, finds it ended, and skips it.
    cancelling.start("high", argv=_pool_argv("high", ports["high"]))
    later = http.post(
        "/v1/tasks", json={"prompt": "Plan the ledger cache rollout.", "min_tier": "high"}
    ).json()["id"]
    assert http.get(f"/v1/tasks/{later}", params={"wait": 30}).json()["status"] == "succeeded"

    low = scrape(ports["low"])
    assert total(low, CANCELLED, tier="low", status="cancelled") == 1
    assert total(low, "parjanya_task_latency_seconds_count", tier="low", status="cancelled") == 1
    assert total(low, "parjanya_escalations_total", from_tier="low") == 0  # it never moved up
    assert total(scrape(ports["high"]), CANCELLED, status="cancelled") == 0
    assert total(scrape(ports["high"]), CANCELLED, tier="high", status="succeeded") == 1
    for stage in ("intake", "mid"):
        assert total(scrape(ports[stage]), CANCELLED, status="cancelled") == 0, stage
    api = scrape(ports["api-metrics"])
    # The queued one, on the queue it waited on; the running one is the low pool's.
    assert total(api, CANCELLED, status="cancelled") - api_before == 1
    assert total(api, CANCELLED, tier="high", status="cancelled") >= 1
