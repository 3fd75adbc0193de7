"""Load shedding and the queue gauges with RabbitMQ as the broker: depths are read from its class
queues (`broker/depth.py`), the shedding state stays in the store's Redis.

The broker is the RabbitMQ of `test_rabbitmq.py` (`PARJANYA_TEST_AMQP_URL`), in a vhost of the
test's own where no worker consumes, so what is submitted stays queued; the store is a Redis of its
own. Without a RabbitMQ that answers (or `rabbitmqctl`) it skips and says why.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from parjanya import keys
from parjanya.client import Client, Overloaded
from parjanya.config import Settings, load_config
from parjanya.metrics_sampler import Sampler
from parjanya.queues import INTAKE_QUEUE, class_lists
from parjanya.sim.server import SimServer

from .conftest import write_test_config
from .test_rabbitmq import _depth, _drop_vhost, _new_vhost

pytestmark = pytest.mark.integration


def test_a_full_class_queue_on_rabbitmq_sheds_and_the_gauge_shows_its_depth(
    store_url: str, sim: SimServer, tmp_path: Path
) -> None:
    """Intake limit 10: batch is refused from 6 queued, critical only at 10 (as on Redis,
    test_admission.py); the intake queue's depth is the sum of its three class queues."""

    def small(raw: dict[str, object]) -> None:
        raw["admission"]["queue_limits"] = {INTAKE_QUEUE: {"max_depth": 10, "max_age_s": 1.0}}  # type: ignore[index]
        raw["admission"]["check_interval_s"] = 0.05  # type: ignore[index]

    config = load_config(write_test_config(tmp_path / "p.yaml", sim.base_url, mutate=small))
    url = _new_vhost()
    try:
        with Client(url, result_url=store_url, config=config) as client:

            def submit(sla: str) -> bool:
                time.sleep(0.06)  # past check_interval_s: each submission sees the queue anew
                try:
                    client.submit({"prompt": "Rename tmp to total.", "sla": sla})
                except Overloaded as exc:
                    assert exc.sla == sla and exc.queue == INTAKE_QUEUE
                    return False
                return True

            accepted = 0
            while submit("batch") and accepted < 20:
                accepted += 1
            # Shed at 0.6 of the depth limit. max_age_s is 1 s and the first batch hop is
            # older than that by now: on Redis its age would have shed batch already, but
            # RabbitMQ cannot tell the oldest message's age, so depth alone decides.
            assert accepted == 6
            assert _depth(url, class_lists(INTAKE_QUEUE)[2]) == 6  # the batch class queue
            assert submit("critical") and submit("critical") and submit("critical")
            assert submit("critical") and not submit("critical")  # 10: critical too
            # The standard class queue was never published to, so never declared: it reads 0.
            assert client.queue_depths.read([INTAKE_QUEUE])[INTAKE_QUEUE].depth == 10
            counters = client.store.counters()
            assert counters["shed_started_batch"] == counters["shed_started_critical"] == 1
            assert client.store.redis.hget(keys.SHEDDING, "queue") == INTAKE_QUEUE.encode()

        settings = Settings(broker_url=url, result_url=store_url)
        values = {
            (s.name, s.labels.get("queue")): s.value
            for family in Sampler.from_settings(settings, config).collect()
            for s in family.samples
        }
        assert values[("parjanya_queue_depth", INTAKE_QUEUE)] == 10
        assert values[("parjanya_queue_depth", "parjanya.tier.low")] == 0
        assert ("parjanya_queue_oldest_age_seconds", INTAKE_QUEUE) not in values  # unknown
        assert values[("parjanya_queue_oldest_age_seconds", "parjanya.tier.low")] == 0  # empty
        assert values[("parjanya_dead_letter_depth", "parjanya.dlq.intake")] == 0
    finally:
        _drop_vhost(url)
