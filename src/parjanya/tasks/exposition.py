"""A pool's `/metrics`, served by its main process from `worker_ready` to shutdown (Celery signals).

The port comes from the process settings (`PARJANYA_METRICS_PORT`, which `parjanya worker` sets
from `--metrics-port` or the `metrics` config), so a plain `celery -A parjanya.app worker` serves
too when it is given one. Forked children only write samples (`metrics_serve.py`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from celery import signals

from parjanya.config import get_settings
from parjanya.metrics_sampler import RedisSampler, deployments_of
from parjanya.metrics_serve import Exposition, build_registry, mark_dead, serve
from parjanya.worker.context import WorkerContext, context

log = logging.getLogger("parjanya.metrics")


@dataclass
class _Serving:
    exposition: Exposition | None = None


_serving = _Serving()


def sampler_for(ctx: WorkerContext) -> RedisSampler:
    return RedisSampler(
        ctx.broker,
        ctx.store,
        deployments_of(ctx.config),
        every_s=ctx.config.metrics.sample_every_s,
    )


@signals.worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    port = get_settings().metrics_port
    if port is None or _serving.exposition is not None:
        return
    ctx = context()
    registry = build_registry(sampler_for(ctx))
    _serving.exposition = serve(registry, ctx.config.metrics.host, port)


@signals.worker_process_shutdown.connect
def _on_child_shutdown(**_: Any) -> None:
    mark_dead(os.getpid())


@signals.worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    exposition, _serving.exposition = _serving.exposition, None
    if exposition is not None:
        exposition.close()
