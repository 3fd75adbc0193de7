"""A pool's `/metrics`, served by its main process from `worker_ready` to shutdown (Celery signals).

The port comes from the process settings (`PARJANYA_METRICS_PORT`, which `parjanya worker` sets
from `--metrics-port` or the `metrics` config), so a plain `celery -A parjanya.app worker` serves
too when it is given one. Forked children only write samples (`metrics_serve.py`). As in
`lifecycle.py`, Celery's signals take no arguments of ours, so the running server is kept in one
record per process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from celery import signals

from parjanya.config import get_config, get_settings
from parjanya.metrics_sampler import RedisSampler
from parjanya.metrics_serve import Exposition, build_registry, mark_dead, serve


@dataclass
class _Serving:
    exposition: Exposition | None = None


_serving = _Serving()


@signals.worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    settings = get_settings()
    if settings.metrics_port is None or _serving.exposition is not None:
        return
    config = get_config()
    registry = build_registry(RedisSampler.from_settings(settings, config))
    _serving.exposition = serve(registry, config.metrics.host, settings.metrics_port)


@signals.worker_process_shutdown.connect
def _on_child_shutdown(**_: Any) -> None:
    mark_dead(os.getpid())


@signals.worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    exposition, _serving.exposition = _serving.exposition, None
    if exposition is not None:
        exposition.close()
