"""The in-flight baseline: bare Celery threads, each task one sync httpx call to the sim.

Each thread has its own httpx client, as a Celery task written for the threads pool would: one
client shared by 200 threads serialised them on its pool's lock and held the baseline to 0.60 of
its own ideal, which measured httpx, not Celery's threads.
"""

from __future__ import annotations

import os
import threading

import httpx
import redis
from celery import Celery

url = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")
sim_url = os.environ.get("BENCH_SIM_URL", "http://127.0.0.1:8686")
app = Celery("bare_calls", broker=url)
app.conf.update(
    task_default_queue="bench.calls",
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
)
_local = threading.local()


def _http() -> httpx.Client:
    client: httpx.Client | None = getattr(_local, "client", None)
    if client is None:
        client = _local.client = httpx.Client(timeout=30)
    return client


_counter = redis.Redis.from_url(os.environ.get("BENCH_BACKEND_URL", url))  # Redis, always
_body = {
    "model": "sim-small",
    "max_tokens": 16,
    "logprobs": True,
    "messages": [{"role": "user", "content": "Rename the variable tmp to total in cart.py."}],
}


@app.task(name="bench.call_model")
def call_model() -> None:
    try:
        _http().post(f"{sim_url}/v1/chat/completions", json=_body).raise_for_status()
    except httpx.HTTPError:
        _counter.incr("bench.inflight.failed")
        raise
    finally:
        _counter.incr("bench.inflight.done")
