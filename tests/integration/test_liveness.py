"""Liveness: a worker that can no longer serve exits non-zero (a store paused for less than a
lease is test_store_pause.py's)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from parjanya.runtime.embedded_redis import EmbeddedRedis, free_port
from parjanya.sim.server import SimServer
from parjanya.worker.liveness import EXIT_DEAF

from .conftest import make_cluster

pytestmark = pytest.mark.integration

#: The public CLI, except that the tier feeder's thread ends on its third pass, as a thread killed
#: by an error nobody caught would (a BaseException gets past every `except Exception`).
DYING_FEEDER = """
import parjanya.worker.feeder as feeder
passes = [0]
step = feeder.QueueFeeder.step
def dying_step(self):
    passes[0] += 1
    if passes[0] > 2 and self.queue != "parjanya.intake":
        raise SystemExit("feeder thread killed by the test")
    return step(self)
feeder.QueueFeeder.step = dying_step
from parjanya.cli.main import app
app(["worker", "--tier", "low", "--loglevel", "INFO"])
"""


def test_a_worker_whose_feeder_thread_dies_exits_non_zero(sim: SimServer, tmp_path: Path) -> None:
    broker = EmbeddedRedis(free_port(), tmp_path / "redis", appendonly=False).start()
    cluster = make_cluster(broker.url, sim, tmp_path, liveness_stale_s=3.0)
    try:
        pool = cluster.start("low", argv=[sys.executable, "-c", DYING_FEEDER])
        deadline = time.monotonic() + 60
        while pool.alive:
            assert time.monotonic() < deadline, pool.log.read_text()[-3000:]
            time.sleep(0.2)
        log = pool.log.read_text(errors="replace")
        assert pool.process.returncode == EXIT_DEAF, log[-3000:]
        assert "feeder parjanya.tier.low" in log and "exiting for a restart" in log
    finally:
        cluster.stop()
        broker.stop()
