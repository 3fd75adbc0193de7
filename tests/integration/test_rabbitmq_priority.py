"""SLA classes on RabbitMQ: a quorum queue per class, consumed 8:3:1 by the tier feeders.

The broker is the RabbitMQ of `test_rabbitmq.py` (`PARJANYA_TEST_AMQP_URL`), in a vhost of the
test's own, the store a Redis of its own. Without a RabbitMQ that answers it skips and says why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from parjanya.client import Client
from parjanya.queues import class_lists, queue_for
from parjanya.sim.server import SimServer

from .conftest import make_cluster
from .test_admission import _finished, _on_the_tier, _request
from .test_rabbitmq import _depth, _drop_vhost, _new_vhost

pytestmark = pytest.mark.integration


def test_on_a_saturated_tier_on_rabbitmq_critical_tasks_overtake_a_batch_flood(
    store_url: str, sim: SimServer, tmp_path: Path
) -> None:
    """test_admission.py's SLA scenario on RabbitMQ: one quorum queue per class, consumed 8:3:1.

    A high tier holding two calls at a time is flooded with batch work, then critical and
    standard tasks arrive. FIFO would finish them after all 40 batch tasks; the feeder's weighted
    turns over its class queues (`worker/amqp_feeder.py`) run them next, and batch still gets its
    turns. A vhost of its own, so no other pool of this module takes the tier's hops.
    """
    url = _new_vhost()
    running = make_cluster(url, sim, tmp_path)
    running.env["PARJANYA_RESULT_URL"] = store_url
    try:
        running.start("intake")
        running.start("high", concurrency=2)
        with Client(url, result_url=store_url, config=running.config) as producer:
            batch = producer.submit_many(
                _request(f"Summarise rabbit batch ledger {i}.", "batch", 0.3) for i in range(40)
            )
            _on_the_tier(producer, batch)
            batch_queue = class_lists(queue_for("high"))[2]
            assert _depth(url, batch_queue) > 0  # the flood waits on the batch class's queue
            critical = producer.submit_many(
                _request(f"Summarise rabbit critical page {i}.", "critical", 0.3) for i in range(4)
            )
            standard = producer.submit_many(
                _request(f"Summarise rabbit standard ticket {i}.", "standard", 0.3)
                for i in range(4)
            )
            batch_done = [_finished(h.result(timeout=120)) for h in batch]
            critical_done = [_finished(h.result(timeout=120)) for h in critical]
            standard_done = [_finished(h.result(timeout=120)) for h in standard]
        for done in (critical_done, standard_done):
            overtaken = [t for t in batch_done if t > max(done)]
            assert len(overtaken) >= 5, (len(overtaken), sorted(batch_done)[-5:], done)
        assert min(batch_done) < min(critical_done)  # batch is served, not starved
        assert _depth(url, queue_for("high")) == 0
        assert all(pool.alive for pool in running.pools)
    finally:
        running.stop()
        _drop_vhost(url)
