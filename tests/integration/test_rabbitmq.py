"""The pipeline and the reliability scenarios with RabbitMQ as the broker and the store on Redis.

The broker is `PARJANYA_TEST_AMQP_URL` (default the local RabbitMQ, `amqp://guest:guest@127.0.0.1:5672/`).
Everything these tests declare lives in a vhost of their own, made with `rabbitmqctl` and deleted
afterwards with all it holds, so no queue of anyone else is touched. Without a RabbitMQ that answers
(or a `rabbitmqctl` to make the vhost with) they skip and say why.

Pipeline tests of `test_pipeline.py` and the kill -9 scenario of `test_reliability.py` are collected
again here, with this module's `redis_url` (the broker: RabbitMQ) and `cluster` in their place.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from kombu import Connection

from parjanya.broker.amqp import DEAD_LETTER_EXCHANGE, purge_dead_letter_queues, ready_depth
from parjanya.client import Client
from parjanya.queues import INTAKE_TASK, TIER_TASK, class_lists, dead_letter_queue_for, queue_for
from parjanya.runtime.embedded_redis import EmbeddedRedis, free_port
from parjanya.schema import TaskStatus
from parjanya.sim.server import SimServer
from parjanya.store import DeadLetterStore

from .conftest import Cluster, SimControl, make_cluster
from .test_pipeline import (  # noqa: F401 (collected again here, on RabbitMQ)
    test_a_low_confidence_answer_escalates_exactly_once,
    test_a_total_outage_dead_letters_with_history_and_replay_succeeds,
    test_asyncio_producers_submit_and_await,
    test_idempotency_key_deduplicates_submissions,
)
from .test_reliability import (  # noqa: F401 (collected again here, on RabbitMQ)
    test_kill_9_of_an_async_tier_pool_mid_call_then_restart_gives_exactly_one_result,
)

pytestmark = pytest.mark.integration

DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/"


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def _base_url() -> str:
    return os.environ.get("PARJANYA_TEST_AMQP_URL", DEFAULT_AMQP)


def _new_vhost() -> str:
    """A vhost of the tests' own on the test RabbitMQ, or a skip that says why there is none."""
    base = _base_url()
    parsed = urlparse(base)
    where = f"{parsed.hostname}:{parsed.port or 5672}"
    try:
        with Connection(base, connect_timeout=3) as probe:
            probe.ensure_connection(max_retries=1)
    except Exception as exc:
        pytest.skip(f"no RabbitMQ at {where}: {exc}")
    if shutil.which("rabbitmqctl") is None:
        pytest.skip(f"RabbitMQ at {where}, but no rabbitmqctl to make a vhost of the tests' own")
    vhost = f"parjanya-test-{uuid.uuid4().hex[:8]}"
    try:
        _rabbitmqctl("add_vhost", vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, parsed.username or "guest", ".*", ".*", ".*")
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"RabbitMQ at {where}, but rabbitmqctl could not make a vhost: {exc}")
    return parsed._replace(path=f"/{vhost}").geturl()


def _drop_vhost(url: str) -> None:
    """Delete a vhost made by `_new_vhost`, with every queue and exchange declared in it."""
    _rabbitmqctl("delete_vhost", urlparse(url).path.lstrip("/"))


@pytest.fixture(scope="module")
def amqp_url() -> Iterator[str]:
    """A vhost of this module's own, deleted with everything in it after."""
    url = _new_vhost()
    try:
        yield url
    finally:
        _drop_vhost(url)


@pytest.fixture(scope="module")
def store_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(free_port(), tmp_path_factory.mktemp("rabbit-store")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_url(amqp_url: str) -> str:
    """The broker of the tests collected here (named as in conftest): RabbitMQ."""
    return amqp_url


@pytest.fixture(scope="module")
def store_url(store_server: EmbeddedRedis) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PARJANYA_RESULT_URL", store_server.url)  # every Client here reads it
        yield store_server.url


@pytest.fixture(scope="module")
def cluster(
    amqp_url: str, store_url: str, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    running = make_cluster(amqp_url, sim, tmp_path_factory.mktemp("rabbit"))
    running.env["PARJANYA_RESULT_URL"] = store_url
    with running.serving("intake", "low", "mid", "high"):
        yield running


@pytest.fixture(scope="module")
def small_cluster(cluster: Cluster) -> Cluster:
    """test_reliability's kill -9 scenario runs on this module's cluster."""
    return cluster


def _depth(amqp_url: str, queue: str) -> int:
    """Messages ready on `queue`: a work queue's every class queue, or one dead-letter queue."""
    with Connection(amqp_url) as connection:
        return ready_depth(connection, queue)


def _wait_depth(amqp_url: str, queue: str, want: int, timeout_s: float = 30) -> int:
    deadline = time.monotonic() + timeout_s
    while (depth := _depth(amqp_url, queue)) < want and time.monotonic() < deadline:
        time.sleep(0.2)
    return depth


def test_a_round_trip_goes_through_rabbitmq_quorum_queues(
    amqp_url: str, store_url: str, client: Client
) -> None:
    done = client.submit({"prompt": "Rename tmp to total in cart.py.", "max_tier": "low"})
    result = done.result(timeout=60)
    assert result.status == TaskStatus.succeeded and result.tier_path == ["low"]
    assert client.settings.store_url == store_url and client.settings.broker_url == amqp_url
    with Connection(amqp_url) as connection:
        channel = connection.default_channel
        for stage in ("intake", "low"):
            # A passive declare answers only for a queue that exists; a redeclaration with other
            # arguments (a classic queue, no dead-letter exchange) would be refused by RabbitMQ.
            channel.queue_declare(queue_for(stage), passive=True)  # type: ignore[arg-type]
        channel.exchange_declare(DEAD_LETTER_EXCHANGE.name, "direct", passive=True)
    vhost = urlparse(amqp_url).path.lstrip("/")
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "type", "--no-table-headers"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    types = dict(line.rsplit(None, 1) for line in listed.splitlines() if line.strip())
    assert types[queue_for("low")] == "quorum" and types[dead_letter_queue_for("low")] == "quorum"
    # A quorum queue of its own for each SLA class (standard, batch: the Redis sub-list names).
    assert {types[name] for name in class_lists(queue_for("low"))} == {"quorum"}


def test_a_malformed_message_is_dead_lettered_once_and_the_pool_keeps_serving(
    amqp_url: str, client: Client, cluster: Cluster
) -> None:
    serving = [p for p in cluster.pools if p.alive]
    dlq = dead_letter_queue_for("intake")
    store_dlq = DeadLetterStore(client.store.redis)
    before_store = len(store_dlq.list(limit=1000, queue=dlq))
    before = _depth(amqp_url, dlq)
    with Connection(amqp_url) as connection:
        producer = connection.Producer()
        intake = queue_for("intake")
        # Headers that name the right task, so the body itself is what is refused.
        task = {"task": INTAKE_TASK, "id": uuid.uuid4().hex}
        producer.publish(b"\x00this is not json{", routing_key=intake, headers=task, content_type="application/json", content_encoding="binary")  # fmt: skip
        producer.publish(b"[" * 50_000 + b"]" * 50_000, routing_key=intake, headers=task, content_type="application/json", content_encoding="utf-8")  # fmt: skip
        producer.publish(b"plain", routing_key=intake, content_type="text/plain", content_encoding="utf-8")  # fmt: skip
    client.app.send_task(TIER_TASK, args=[{"bogus": True}], queue=queue_for("intake"))
    client.app.send_task("no.such.task", args=[], queue=queue_for("intake"))
    # A tier queue is its feeder's alone (worker/amqp_feeder.py), which refuses the same way.
    low_dlq = dead_letter_queue_for("low")
    low_before = _depth(amqp_url, low_dlq)
    client.app.send_task(TIER_TASK, args=[{"bogus": True}], queue=queue_for("low"))
    client.app.send_task(TIER_TASK, args=[], kwargs={"x": 1}, queue=queue_for("low"))

    after = client.submit("Rename the variable tmp to total in cart.py.").result(timeout=60)
    assert after.status == TaskStatus.succeeded
    # Each one is in RabbitMQ's dead-letter queue once, and recorded once in the store.
    assert _wait_depth(amqp_url, dlq, before + 5) == before + 5
    time.sleep(2)  # a message that looped would be dead-lettered again meanwhile
    assert _depth(amqp_url, dlq) == before + 5
    reasons = [e.reason for e in store_dlq.list(limit=1000, queue=dlq)]
    assert len(reasons) - before_store == 5, reasons
    for expected in ("unknown task", "nested", "not JSON", "content type"):
        assert any(expected in r for r in reasons), (expected, reasons)
    assert _wait_depth(amqp_url, low_dlq, low_before + 2) == low_before + 2
    low = client.submit({"prompt": "Rename tmp to sum in cart.py.", "max_tier": "low"})
    assert low.result(timeout=60).status == TaskStatus.succeeded
    assert _depth(amqp_url, low_dlq) == low_before + 2
    assert all(p.alive for p in serving)
    assert _depth(amqp_url, queue_for("intake")) == 0 and _depth(amqp_url, queue_for("low")) == 0


SCENARIOS_ENV = "PARJANYA_TEST_RABBITMQ_SCENARIOS"


class _OwnVhost:
    """Stands in for the redis-server that a scenario of test_reliability.py starts as its own
    broker: a vhost of its own on the test RabbitMQ, deleted at `stop`."""

    def __init__(self, *_: object, **__: object) -> None:
        self.url = ""

    def start(self) -> _OwnVhost:
        self.url = _new_vhost()
        return self

    def stop(self) -> None:
        _drop_vhost(self.url)


@pytest.fixture
def on_rabbitmq(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Run a scenario of test_reliability.py with RabbitMQ as its own broker, store on Redis.

    The store is the scenario's own too: with the module's, the module cluster's reaper would
    republish the scenario's expired leases to the module's vhost, where its pools (no chaos
    hook) run them, and the worker-killer's poison would succeed there.
    """
    if os.environ.get(SCENARIOS_ENV) != "1":
        pytest.skip(
            f"{SCENARIOS_ENV}=1 runs test_reliability's rolling restart and worker killer on "
            "RabbitMQ (about 40 s, beyond what CI's 15 minutes leave)"
        )
    from . import test_reliability

    store = EmbeddedRedis(free_port(), tmp_path_factory.mktemp("scenario-store")).start()
    monkeypatch.setenv("PARJANYA_RESULT_URL", store.url)  # the scenario's Client reads it

    def with_store(*args: object, **kwargs: object) -> Cluster:
        running = make_cluster(*args, **kwargs)  # type: ignore[arg-type]
        running.env["PARJANYA_RESULT_URL"] = store.url
        return running

    monkeypatch.setattr(test_reliability, "EmbeddedRedis", _OwnVhost)
    monkeypatch.setattr(test_reliability, "make_cluster", with_store)
    try:
        yield
    finally:
        store.stop()


def test_a_rolling_restart_on_rabbitmq_loses_nothing_and_runs_nothing_twice(
    on_rabbitmq: None,
    sim: SimServer,
    sim_control: SimControl,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """test_reliability's T8 on RabbitMQ: each stopping pool gives back its unstarted hops to
    the store and hands the messages its feeder holds unclaimed back to RabbitMQ at the SIGTERM.

    The scenario waits for the tier queue to show a backlog (every pool full). RabbitMQ counts
    only messages ready, and with the default window (a pool's slots and backlog, per class) the
    two feeders would hold a whole wave unacked; a window of 4 leaves the backlog on the queue.
    """
    from . import test_reliability

    with_store = test_reliability.make_cluster  # on_rabbitmq's: the store on Redis

    def small_window(config: dict[str, Any]) -> None:
        config.setdefault("amqp", {})["feeder_prefetch"] = 4

    def with_small_window(*args: Any, **kwargs: Any) -> Cluster:
        return with_store(*args, mutate=small_window, **kwargs)

    monkeypatch.setattr(test_reliability, "make_cluster", with_small_window)
    test_reliability.test_a_rolling_restart_under_load_loses_nothing_and_runs_nothing_twice(
        sim, sim_control, tmp_path, None, monkeypatch
    )


def test_a_worker_killer_on_rabbitmq_is_dead_lettered_as_poison(
    on_rabbitmq: None,
    sim: SimServer,
    sim_control: SimControl,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from .test_reliability import (
        test_a_task_that_kills_its_worker_every_time_is_dead_lettered_as_poison as scenario,
    )

    scenario(sim, sim_control, tmp_path, None, monkeypatch)


def test_with_feeder_batch_0_celerys_consumer_serves_and_refuses_poison_on_rabbitmq(
    store_url: str, sim: SimServer, tmp_path: Path
) -> None:
    """`reliability.feeder_batch: 0`: Celery's own consumer serves every queue, through the AMQP
    guard of `broker/consumer.py` (a vhost of its own, so no feeder of this module competes)."""
    url = _new_vhost()
    running = make_cluster(url, sim, tmp_path, feeder_batch=0)
    running.env["PARJANYA_RESULT_URL"] = store_url
    try:
        running.start("intake")
        running.start("low")
        with Client(url, result_url=store_url, config=running.config) as client:
            client.app.send_task(TIER_TASK, args=[{"bogus": True}], queue=queue_for("low"))
            with Connection(url) as connection:
                connection.Producer().publish(
                    b"{not json", routing_key=queue_for("low"), headers={"task": TIER_TASK}
                )
            done = client.submit({"prompt": "Rename tmp to total in cart.py.", "max_tier": "low"})
            assert done.result(timeout=60).status == TaskStatus.succeeded
            assert _wait_depth(url, dead_letter_queue_for("low"), 2) == 2
            assert purge_dead_letter_queues(client.app) == 2  # `parjanya dlq purge` does this
            assert _depth(url, dead_letter_queue_for("low")) == 0
        assert all(pool.alive for pool in running.pools)
        logs = "".join(pool.log.read_text(errors="replace") for pool in running.pools)
        assert "batch feeder started" not in logs
    finally:
        running.stop()
        _drop_vhost(url)


@pytest.mark.parametrize(("stage", "task"), [("intake", INTAKE_TASK), ("low", TIER_TASK)])
def test_hostile_bodies_on_rabbitmq_are_dead_lettered_once_and_every_pool_serves(
    amqp_url: str, client: Client, cluster: Cluster, stage: str, task: str
) -> None:
    """test_hostile.py's eight bodies, published as AMQP bodies that name the queue's task."""
    from .test_hostile import hostile_messages

    serving = [p for p in cluster.pools if p.alive]
    dlq = dead_letter_queue_for(stage)  # type: ignore[arg-type]
    before = _depth(amqp_url, dlq)
    bodies = hostile_messages(task)
    # With confirms: each publish returns once RabbitMQ holds the message. Unconfirmed, a
    # connection closed right after its last publish can lose it (the 3 MiB body, last here,
    # went missing from the quorum queue in about one run in ten: 9 of 10 dead letters).
    with Connection(amqp_url, transport_options={"confirm_publish": True}) as connection:
        producer = connection.Producer()
        for body in bodies:
            producer.publish(
                body,
                routing_key=queue_for(stage),  # type: ignore[arg-type]
                headers={"task": task, "id": uuid.uuid4().hex},
                content_type="application/json",
                content_encoding="utf-8",
            )
    assert _wait_depth(amqp_url, dlq, before + len(bodies), timeout_s=60) == before + len(bodies)
    done = client.submit({"prompt": "Rename tmp to total in cart.py.", "max_tier": "low"})
    assert done.result(timeout=60).status == TaskStatus.succeeded
    assert _depth(amqp_url, dlq) == before + len(bodies)  # once each, nothing looping
    assert all(p.alive for p in serving)
