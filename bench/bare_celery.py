"""The baseline: bare Celery, one hop, a no-op task, on the bench's broker, results in Redis.

On RabbitMQ (`--broker amqp://...`) the results go to the Redis that holds Parjanya's store.
"""

from __future__ import annotations

import os

from celery import Celery

url = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")
app = Celery("bare", broker=url, backend=os.environ.get("BENCH_BACKEND_URL", url))
app.conf.update(
    task_default_queue="bench.bare", worker_prefetch_multiplier=1, worker_hijack_root_logger=False
)


@app.task(name="bench.noop")
def noop(value: int) -> int:
    return value
