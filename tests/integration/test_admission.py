"""SLA classes, deadlines and load shedding over a real Redis, real worker processes and the sim.

The high tier runs two calls at a time, so a few dozen simulated calls of a few tenths of a second
saturate it: what is on its queue then waits seconds, and the order the pool takes it in shows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from fastapi.testclient import TestClient

from parjanya import keys
from parjanya.api.app import create_app as create_api
from parjanya.client import Client, Overloaded, TaskHandle
from parjanya.config import Settings, load_config
from parjanya.queues import ALL_WORK_QUEUES, INTAKE_QUEUE, class_lists
from parjanya.schema import TaskResult, TaskStatus
from parjanya.sim.ledger import prompt_key
from parjanya.sim.server import SimServer

from .conftest import Cluster, SimControl, make_cluster, write_test_config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def narrow(
    redis_url: str, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """A classifier and a high tier that holds two calls at a time."""
    running = make_cluster(redis_url, sim, tmp_path_factory.mktemp("narrow"))
    try:
        running.start("intake")
        running.start("high", concurrency=2)
        yield running
    finally:
        running.stop()


@pytest.fixture
def producer(redis_url: str, narrow: Cluster) -> Iterator[Client]:
    with Client(redis_url, config=narrow.config) as client:
        yield client


def _request(text: str, sla: str, latency: float, **extra: object) -> dict[str, object]:
    return {
        "prompt": f"{text} [[sim:latency={latency}]] [[sim:difficulty=0.05]]",
        "sla": sla,
        "min_tier": "high",
        "max_tier": "high",
        "max_output_tokens": 16,
        **extra,
    }


def _on_the_tier(client: Client, handles: list[TaskHandle], timeout_s: float = 60) -> None:
    """Wait until the classifier has handed every task to the tier (the tier is then saturated)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(any(t.stage == "high" for t in client.status(h.id).timings) for h in handles):
            return
        time.sleep(0.05)
    raise AssertionError("tasks were not classified in time")


def _finished(result: TaskResult) -> float:
    assert result.status == TaskStatus.succeeded, (result.status, result.error)
    assert result.finished_at is not None
    return result.finished_at.timestamp()


def test_on_a_saturated_tier_critical_tasks_finish_before_batch_tasks_submitted_earlier(
    producer: Client,
) -> None:
    batch = producer.submit_many(
        _request(f"Summarise batch report {i}.", "batch", 0.3) for i in range(40)
    )
    _on_the_tier(producer, batch)
    critical = producer.submit_many(
        _request(f"Summarise critical incident {i}.", "critical", 0.3) for i in range(4)
    )
    standard = producer.submit_many(
        _request(f"Summarise standard request {i}.", "standard", 0.3) for i in range(4)
    )
    batch_done = [_finished(h.result(timeout=120)) for h in batch]
    critical_done = [_finished(h.result(timeout=120)) for h in critical]
    standard_done = [_finished(h.result(timeout=120)) for h in standard]
    # FIFO would finish them after all 40 batch tasks; with 8:3:1 turns they go next.
    for done in (critical_done, standard_done):
        overtaken = [t for t in batch_done if t > max(done)]
        assert len(overtaken) >= 5, (len(overtaken), sorted(batch_done)[-5:], done)
    # ... and batch is not starved either: it keeps being served while critical work waits.
    assert min(batch_done) < min(critical_done)


def test_a_task_past_its_deadline_ends_expired_and_never_reaches_the_provider(
    producer: Client, sim_control: SimControl
) -> None:
    before = producer.store.counters().get("expired", 0)
    backlog = producer.submit_many(
        _request(f"Summarise backlog item {i}.", "batch", 0.3) for i in range(16)
    )
    _on_the_tier(producer, backlog)
    prompt = "Summarise the overdue audit log."
    late = producer.submit(_request(prompt, "batch", 0.3, deadline_s=1.0))
    result = late.result(timeout=60)
    assert result.status == TaskStatus.expired, (result.status, result.error)
    assert result.error is not None and result.error.type == "expired"
    assert all(a.stage == "intake" for a in result.attempts)  # no tier attempt was ever made
    for handle in backlog:
        handle.result(timeout=60)
    per_prompt = sim_control.stats()["per_prompt"]
    assert isinstance(per_prompt, dict)
    full_prompt = _request(prompt, "batch", 0.3)["prompt"]
    assert prompt_key(str(full_prompt)) not in per_prompt
    assert producer.store.counters().get("expired", 0) >= before + 1
    # A task with time enough is served as usual.
    easy = producer.submit(
        _request("Summarise the prompt audit log.", "batch", 0.05, deadline_s=60)
    )
    assert easy.result(timeout=60).status == TaskStatus.succeeded


def _own_db(url: str, db: int) -> str:
    """A database of the test server no worker consumes: its queues only grow."""
    return urlsplit(url)._replace(path=f"/{db}").geturl()


def _forget(server: redis.Redis) -> None:
    """Delete what this test writes in its own database (never FLUSH: the server may not be ours)."""
    lists = [name for queue in ALL_WORK_QUEUES for name in class_lists(queue)]
    server.delete(*lists, keys.SHEDDING, keys.COUNTERS)


def test_shedding_starts_and_stops_at_the_configured_limits(
    redis_url: str, sim: SimServer, tmp_path: Path
) -> None:
    """Intake limit: 10 messages. Batch is refused from 6, standard from 8, critical from 10;
    each is admitted again below 0.8 of its level."""

    def small(raw: dict[str, object]) -> None:
        raw["admission"]["queue_limits"] = {INTAKE_QUEUE: {"max_depth": 10, "max_age_s": 600}}
        raw["admission"]["check_interval_s"] = 0.05
        raw["api"]["auth"] = "off"  # this test is about shedding, not keys

    config = load_config(write_test_config(tmp_path / "p.yaml", sim.base_url, mutate=small))
    url = _own_db(redis_url, 9)
    server = redis.Redis.from_url(url)
    _forget(server)
    client = Client(url, config=config)

    def submit(sla: str) -> bool:
        time.sleep(0.06)  # past check_interval_s: every submission sees the queue as it is now
        try:
            client.submit({"prompt": "Rename tmp to total.", "sla": sla})
        except Overloaded as exc:
            assert exc.sla == sla and exc.retry_after_s == config.admission.retry_after_s
            return False
        return True

    def depth() -> int:
        return sum(int(server.llen(name)) for name in class_lists(INTAKE_QUEUE))

    try:
        accepted = 0
        while submit("batch"):
            accepted += 1
        assert accepted == 6 and depth() == 6
        assert submit("standard") and submit("standard") and not submit("standard")
        assert depth() == 8 and not submit("batch")
        assert submit("critical") and submit("critical") and not submit("critical")
        assert depth() == 10
        counters = client.store.counters()
        for sla in ("batch", "standard", "critical"):
            assert counters[f"shed_started_{sla}"] == 1 and counters[f"shed_{sla}"] >= 1

        # The API shares the state: a shed class is a 503 with Retry-After.
        with TestClient(create_api(Settings(broker_url=url), config)) as api:
            refused = api.post("/v1/tasks", json={"prompt": "Rename x.", "sla": "batch"})
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "5"
            assert refused.json()["error"]["type"] == "overloaded"

            for _ in range(5):  # 10 -> 5 messages: 0.5 of the limit
                server.rpop(class_lists(INTAKE_QUEUE)[2]) or server.rpop(INTAKE_QUEUE)
            while depth() > 5:
                server.rpop(class_lists(INTAKE_QUEUE)[1])
            time.sleep(0.06)
            # Standard (0.8, resumes below 0.64) and critical are back; batch (0.6) resumes only
            # below 0.48: hysteresis.
            assert (
                api.post("/v1/tasks", json={"prompt": "Rename y.", "sla": "standard"}).status_code
                == 202
            )
        assert depth() == 6
        assert not submit("batch")  # 0.6: still shed
        while depth() > 4:
            server.rpop(class_lists(INTAKE_QUEUE)[1]) or server.rpop(INTAKE_QUEUE)
        assert submit("batch")  # 0.4 < 0.48: admitted again
        counters = client.store.counters()
        assert counters["shed_stopped_batch"] == 1 and counters["shed_stopped_standard"] == 1
    finally:
        client.close()
        _forget(server)
        server.close()


def test_shedding_counts_the_age_of_the_oldest_message(
    redis_url: str, sim: SimServer, tmp_path: Path
) -> None:
    def aged(raw: dict[str, object]) -> None:
        raw["admission"]["queue_limits"] = {INTAKE_QUEUE: {"max_depth": 1000, "max_age_s": 1.0}}
        raw["admission"]["check_interval_s"] = 0.05

    config = load_config(write_test_config(tmp_path / "p.yaml", sim.base_url, mutate=aged))
    url = _own_db(redis_url, 9)
    server = redis.Redis.from_url(url)
    _forget(server)
    client = Client(url, config=config)
    try:
        client.submit({"prompt": "Rename tmp to total.", "sla": "batch"})
        time.sleep(0.7)  # the oldest message is now 0.7 of max_age_s old: past batch's 0.6
        with pytest.raises(Overloaded):
            client.submit({"prompt": "Rename tmp to sum.", "sla": "batch"})
        client.submit({"prompt": "Rename tmp to acc.", "sla": "standard"})  # 0.8 not reached
    finally:
        client.close()
        _forget(server)
        server.close()
