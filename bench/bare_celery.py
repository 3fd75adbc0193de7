"""The baseline: bare Celery, one hop, a no-op task, Redis broker and result backend."""

from __future__ import annotations

import os

from celery import Celery

url = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")
app = Celery("bare", broker=url, backend=url)
app.conf.update(
    task_default_queue="bench.bare", worker_prefetch_multiplier=1, worker_hijack_root_logger=False
)


@app.task(name="bench.noop")
def noop(value: int) -> int:
    return value
