"""Flower's Broker page on RabbitMQ: `parjanya flower --broker-api=<management API>`.

The broker is the RabbitMQ of `test_rabbitmq.py` (`PARJANYA_TEST_AMQP_URL`), in a vhost of this
module's own; the management API is `PARJANYA_TEST_AMQP_API` (default the local plugin,
`http://guest:guest@127.0.0.1:15672/api/`). Without a management API that answers, the test
skips and says why (`rabbitmq-plugins enable rabbitmq_management` turns it on).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from parjanya.app import create_app
from parjanya.broker.amqp import prepare
from parjanya.broker.publish import HopPublisher
from parjanya.config import Settings, load_config
from parjanya.queues import ALL_DEAD_LETTER_QUEUES, ALL_WORK_QUEUES, SLA_CLASSES, queue_for
from parjanya.runtime.embedded_redis import free_port
from parjanya.schema import HopMessage
from parjanya.sim.server import SimServer

from .conftest import make_cluster
from .test_rabbitmq import _drop_vhost, _new_vhost

pytestmark = pytest.mark.integration

DEFAULT_API = "http://guest:guest@127.0.0.1:15672/api/"


def _api() -> str:
    """The management API, or a skip that says why there is none."""
    api = os.environ.get("PARJANYA_TEST_AMQP_API", DEFAULT_API)
    shown = httpx.URL(api).copy_with(username=None, password=None)
    try:
        answer = httpx.get(f"{api.rstrip('/')}/overview", timeout=3)
    except httpx.HTTPError as exc:
        pytest.skip(f"no RabbitMQ management API at {shown} (rabbitmq_management plugin): {exc}")
    if answer.status_code != 200:
        pytest.skip(f"RabbitMQ management API at {shown} answered {answer.status_code}")
    return api


@pytest.fixture
def vhost() -> Iterator[str]:
    url = _new_vhost()
    try:
        yield url
    finally:
        _drop_vhost(url)


def _flower(env: dict[str, str], api: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "parjanya", "flower", "--port", str(port),
             f"--broker-api={api}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            # Flower's HTTP API answers without a login only when told to (loopback here).
            env={**env, "FLOWER_UNAUTHENTICATED_API": "true"},
            start_new_session=True,
            cwd=log.parent,
        )  # fmt: skip


def test_flowers_broker_page_lists_every_parjanya_queue_with_its_length_from_the_api(
    vhost: str, sim: SimServer, tmp_path: Path
) -> None:
    api = _api()
    cluster = make_cluster(vhost, sim, tmp_path)  # its env and config; no pool is started
    app = create_app(Settings(broker_url=vhost), load_config(Path(cluster.env["PARJANYA_CONFIG"])))
    prepare(app, cluster.config.amqp)  # what a worker declares at start
    # Nothing consumes here, so what is published stays: 2 critical, 3 standard, 4 batch hops
    # on the high tier, one hop of each class on intake.
    publisher = HopPublisher(app)
    for sla, count in zip(SLA_CLASSES, (2, 3, 4), strict=True):
        for _ in range(count):
            publisher.publish(HopMessage(task_id=uuid.uuid4().hex, hop=1, stage="high", sla=sla))
        publisher.publish(HopMessage(task_id=uuid.uuid4().hex, hop=0, stage="intake", sla=sla))
    publisher.close()
    with app.connection_for_write() as connection:
        connection.Producer().publish(
            b"dead", exchange="parjanya.dlx", routing_key="parjanya.dlq.low"
        )
    port = free_port()
    flower = _flower(cluster.env, api, port, tmp_path / "flower.log")
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        # The management API counts a queue's messages every few seconds (its stats interval).
        lengths: dict[str, Any] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                listed = http.get("/api/queues/length").json()["active_queues"]
            except (httpx.HTTPError, ValueError, KeyError):
                listed = []
            lengths = {q["name"]: q.get("messages") for q in listed}
            if lengths.get(queue_for("high")) == 9 and lengths.get("parjanya.dlq.low") == 1:
                break
            time.sleep(0.5)
        # One row per Parjanya queue, a work queue's class queues summed into it.
        assert set(lengths) == set(ALL_WORK_QUEUES + ALL_DEAD_LETTER_QUEUES), lengths
        assert lengths[queue_for("high")] == 9 and lengths[queue_for("intake")] == 3, lengths
        assert lengths["parjanya.dlq.low"] == 1 and lengths[queue_for("low")] == 0, lengths
        page = http.get("/broker")
        assert page.status_code == 200, page.text[:500]
        for name in ALL_WORK_QUEUES + ALL_DEAD_LETTER_QUEUES:
            assert f"<td>{name}</td>" in page.text, name
        assert "\x06" not in page.text and "No queue data" not in page.text
    finally:
        http.close()
        os.killpg(flower.pid, signal.SIGTERM)
        try:
            flower.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(flower.pid, signal.SIGKILL)
        print((tmp_path / "flower.log").read_text()[-2000:])
