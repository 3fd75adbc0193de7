"""`/metrics` over HTTP: the pools started with the CLI, tasks through the sim, then a scrape.

The classifier runs Celery's prefork pool (its hops run in forked children), so its endpoint
also shows the multiprocess merge: the complexity scores the children observed appear at the
parent's port.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from parjanya.client import Client
from parjanya.queues import ALL_DEAD_LETTER_QUEUES, ALL_WORK_QUEUES, queue_for
from parjanya.runtime.embedded_redis import free_port
from parjanya.schema import TaskStatus
from parjanya.sim.server import SimServer

from .conftest import Cluster, make_cluster

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    response.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def series(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(ls)[label] for (n, ls), _ in samples.items() if n == name and label in dict(ls)}


@pytest.fixture(scope="module")
def metered(
    redis_url: str, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Cluster, dict[str, int]]]:
    cluster = make_cluster(redis_url, sim, tmp_path_factory.mktemp("metrics"))
    ports = {stage: free_port() for stage in ("intake", "low", "mid", "high")}
    try:
        for stage, port in ports.items():
            flag = ["--classifier"] if stage == "intake" else ["--tier", stage, "--pool", "threads"]
            argv = [sys.executable, "-m", "parjanya", "worker", *flag, "-c", "4"]
            cluster.start(stage, argv=[*argv, "--metrics-port", str(port)])
        yield cluster, ports
    finally:
        cluster.stop()


def test_a_tier_pool_serves_the_named_series_after_a_run(
    metered: tuple[Cluster, dict[str, int]], redis_url: str
) -> None:
    cluster, ports = metered
    with Client(redis_url, config=cluster.config) as client:
        easy = [client.submit(f"Rename tmp to total in cart_{i}.py") for i in range(4)]
        escalating = client.submit("Fix the typo in the metrics page title. [[sim:difficulty=0.5]]")
        results = [h.result(timeout=60) for h in [*easy, escalating]]
    assert all(r.status == TaskStatus.succeeded for r in results), [r.error for r in results]
    assert results[-1].tier_path == ["low", "mid"]
    poison = redis.Redis.from_url(redis_url)
    poison.lpush(queue_for("low"), b"not a kombu envelope")

    deadline = time.monotonic() + 30
    while True:  # the poison entry is dead-lettered by the low pool's feeder, asynchronously
        low = scrape(ports["low"])
        if total(low, "parjanya_dead_letters_total", queue="parjanya.dlq.low") >= 1:
            break
        assert time.monotonic() < deadline, "the poison entry was never counted"
        time.sleep(0.2)

    assert total(low, "parjanya_tasks_total", tier="low", status="succeeded") >= 1
    assert total(low, "parjanya_task_latency_seconds_count", tier="low") >= 1
    assert total(low, "parjanya_task_latency_seconds_bucket", tier="low", le="+Inf") >= 1
    assert total(low, "parjanya_model_latency_seconds_count", tier="low") >= 2
    assert total(low, "parjanya_cost_usd_total", tier="low", tenant="_none") > 0
    assert total(low, "parjanya_tokens_total", tier="low", direction="output") > 0
    assert total(low, "parjanya_escalations_total", from_tier="low", to_tier="mid") >= 1
    assert total(low, "parjanya_provider_calls_total", outcome="ok") >= 2
    # Read from Redis on the scrape: every queue is reported, whichever pool is scraped.
    assert series(low, "parjanya_queue_depth", "queue") == set(ALL_WORK_QUEUES)
    assert series(low, "parjanya_queue_oldest_age_seconds", "queue") <= set(ALL_WORK_QUEUES)
    assert series(low, "parjanya_dead_letter_depth", "queue") == set(ALL_DEAD_LETTER_QUEUES)
    assert total(low, "parjanya_dead_letter_depth", queue="parjanya.dlq.low") >= 1
    breakers = {n for n in series(low, "parjanya_breaker_state", "deployment")}
    assert breakers == {d.name for t in cluster.config.tiers.values() for d in t.deployments}
    assert total(low, "parjanya_breaker_state", state="closed") == len(breakers)

    mid = scrape(ports["mid"])
    assert total(mid, "parjanya_tasks_total", tier="mid", status="succeeded") >= 1
    assert total(mid, "parjanya_cost_usd_total", tier="mid") > 0

    classifier = scrape(ports["intake"])  # prefork: children's samples merged by the parent
    assert total(classifier, "parjanya_complexity_score_count") >= len(results)
    assert total(classifier, "parjanya_complexity_score_count", tier="low") >= 1


def test_a_prefork_pool_runs_in_multiprocess_mode_in_its_own_directory(
    metered: tuple[Cluster, dict[str, int]],
) -> None:
    cluster, _ = metered
    intake = next(p for p in cluster.pools if p.stage == "intake")
    directory = Path(cluster.log_dir) / ".parjanya" / "metrics" / f"intake-{intake.process.pid}"
    assert any(directory.glob("*.db")), sorted(directory.parent.glob("*"))
    low = next(p for p in cluster.pools if p.stage == "low")
    assert not (directory.parent / f"low-{low.process.pid}").exists()  # threads: in memory
