"""A pool's `/metrics`, served by its main process from `worker_ready` to shutdown (Celery signals).

The port comes from the process settings (`PARJANYA_METRICS_PORT`, which `parjanya worker` sets
from `--metrics-port` or the `metrics` config), so a plain `celery -A parjanya.app worker` serves
too when it is given one. Forked children only write samples (`metrics_serve.py`). As in
`lifecycle.py`, Celery's signals take no arguments of ours, so the running server is kept in the
`Running` record of the app's worker state (`worker/process.py`), not in this module.
"""

from __future__ import annotations

import os
from typing import Any

from celery import signals

from parjanya.app import app as default_app
from parjanya.config import get_config, get_settings
from parjanya.metrics_sampler import Sampler
from parjanya.metrics_serve import build_registry, mark_dead, serve
from parjanya.worker.process import Running, process_of


def _running(sender: Any) -> Running:
    return process_of(getattr(sender, "app", None) or default_app).running


@signals.worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    settings, running = get_settings(), _running(sender)
    if settings.metrics_port is None or running.exposition is not None:
        return
    config = get_config()
    registry = build_registry(Sampler.from_settings(settings, config))
    running.exposition = serve(registry, config.metrics.host, settings.metrics_port)


@signals.worker_process_shutdown.connect
def _on_child_shutdown(**_: Any) -> None:
    mark_dead(os.getpid())


@signals.worker_shutdown.connect
def _on_worker_shutdown(sender: Any = None, **_: Any) -> None:
    running = _running(sender)
    exposition, running.exposition = running.exposition, None
    if exposition is not None:
        exposition.close()
