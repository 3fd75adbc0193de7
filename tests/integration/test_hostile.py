"""Hostile bytes on real queues of running pools: each is dead-lettered once, every pool keeps serving.

The messages go straight onto the Redis lists (as anyone with broker access could push them), so
they reach the batch feeders and kombu's consumer exactly as they would in production. Every test
runs twice: broker and store in one Redis database, and the store apart (`PARJANYA_RESULT_URL` on
another database of the same server), where feeders must pop the broker, not the store.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis

from parjanya import keys
from parjanya.client import Client
from parjanya.queues import INTAKE_TASK, TIER_TASK, dead_letter_queue_for, queue_for
from parjanya.runtime.embedded_redis import EmbeddedRedis, free_port
from parjanya.schema import TaskStatus
from parjanya.sim.server import SimServer
from parjanya.store import DeadLetterStore

from .conftest import Cluster, make_cluster

pytestmark = pytest.mark.integration


def _envelope(task: str, body: bytes) -> bytes:
    """A kombu message as the Redis transport stores it, around an arbitrary body."""
    return json.dumps(
        {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {"task": task, "id": "hostile"},
            "properties": {"body_encoding": "base64", "delivery_tag": "x", "delivery_info": {}},
        }
    ).encode()


def hostile_messages(task: str) -> list[bytes]:
    deep = b"[" * 100_000 + b"]" * 100_000
    return [
        b"[1, 2, 3]",  # a JSON list of numbers
        _envelope(task, json.dumps([[], {}, {}]).encode()),  # empty args
        deep,  # nested 100 000 deep
        _envelope(task, deep),  # the same inside a well-formed envelope
        b"\xff\xfe\x00 not utf-8 \xc3\x28",  # invalid UTF-8
        b"plain text, not JSON",
        b'{"body": 1, "properties": {}, "headers": {}}',  # an envelope whose body is no body
        b"x" * (3 << 20),  # 3 MiB
    ]


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A broker of this module's own: the DLQ counts below must see no other test's letters."""
    server = EmbeddedRedis(free_port(), tmp_path_factory.mktemp("hostile-redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module", params=["one-redis", "store-apart"])
def pools(
    request: pytest.FixtureRequest,
    own_broker: EmbeddedRedis,
    sim: SimServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    running = make_cluster(own_broker.url, sim, tmp_path_factory.mktemp(request.param))
    if request.param == "store-apart":
        running.env["PARJANYA_RESULT_URL"] = own_broker.url.rsplit("/", 1)[0] + "/1"
    with running.serving("intake", "low"):
        yield running


def _store_url(pools: Cluster, own_broker: EmbeddedRedis) -> str:
    return pools.env.get("PARJANYA_RESULT_URL", own_broker.url)


def _dead_letter_count(store: redis.Redis, stage: str) -> int:
    return int(store.llen(dead_letter_queue_for(stage)))  # type: ignore[arg-type]


@pytest.mark.parametrize(("stage", "task"), [("low", TIER_TASK), ("intake", INTAKE_TASK)])
def test_hostile_messages_are_dead_lettered_once_and_the_pool_keeps_serving(
    own_broker: EmbeddedRedis, pools: Cluster, stage: str, task: str
) -> None:
    broker = redis.Redis.from_url(own_broker.url)
    store = redis.Redis.from_url(_store_url(pools, own_broker))
    before = _dead_letter_count(store, stage)
    messages = hostile_messages(task)
    for raw in messages:
        broker.lpush(queue_for(stage), raw)  # type: ignore[arg-type]
    deadline = time.monotonic() + 30
    while _dead_letter_count(store, stage) - before < len(messages):
        assert time.monotonic() < deadline, (
            _dead_letter_count(store, stage) - before,
            [p.log.read_text(errors="replace")[-2000:] for p in pools.pools],
        )
        time.sleep(0.1)
    with Client(
        own_broker.url, result_url=_store_url(pools, own_broker), config=pools.config
    ) as client:
        done = client.submit(
            {"prompt": "Rename the variable tmp to total in cart.py.", "max_tier": "low"}
        ).result(timeout=30)
    assert done.status == TaskStatus.succeeded and done.tier_path == ["low"]
    assert all(p.alive for p in pools.pools)
    time.sleep(0.5)  # nothing is dead-lettered twice, late
    assert _dead_letter_count(store, stage) - before == len(messages)
    assert broker.llen(queue_for(stage)) == 0  # type: ignore[arg-type]
    letters = DeadLetterStore(store).list(limit=len(messages), queue=dead_letter_queue_for(stage))
    assert all(letter.reason and letter.raw is not None for letter in letters)
    assert all(len(letter.raw or "") <= 8192 for letter in letters)  # bounded copies


def test_a_task_finishes_with_the_store_where_the_topology_puts_it(
    own_broker: EmbeddedRedis, pools: Cluster
) -> None:
    store_url = _store_url(pools, own_broker)
    with Client(own_broker.url, result_url=store_url, config=pools.config) as client:
        done = client.submit(
            {"prompt": "Add a docstring to parse_date.", "max_tier": "low"}
        ).result(timeout=30)
    assert done.status == TaskStatus.succeeded and done.tier_path == ["low"]
    in_store = redis.Redis.from_url(store_url).exists(keys.task(done.id))
    in_broker_db = redis.Redis.from_url(own_broker.url).exists(keys.task(done.id))
    assert in_store and bool(in_broker_db) == (store_url == own_broker.url)


def test_every_pool_reports_itself_alive_to_the_liveness_probe(pools: Cluster) -> None:
    host = socket.gethostname()
    for pool in pools.pools:
        heartbeat = pools.log_dir / ".parjanya" / "alive" / f"{host}-{pool.process.pid}.json"
        checked = subprocess.run(
            [sys.executable, "-m", "parjanya", "alive", str(heartbeat)],
            env=pools.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "alive: pid" in checked.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "parjanya", "alive", str(pools.log_dir / "nope.json")],
        env=pools.env,
        capture_output=True,
        timeout=30,
    )
    assert missing.returncode == 1


def test_a_store_a_worker_cannot_serve_is_refused_at_start(pools: Cluster) -> None:
    env = {**pools.env, "PARJANYA_RESULT_URL": "postgresql://db.invalid/parjanya"}
    finished = subprocess.run(
        [sys.executable, "-m", "parjanya", "worker", "--tier", "high", "--pool", "solo"],
        env=env,
        capture_output=True,
        timeout=60,
        text=True,
    )
    assert finished.returncode != 0
    assert "refusing to start" in finished.stdout + finished.stderr
    assert "store must be Redis" in finished.stdout + finished.stderr
