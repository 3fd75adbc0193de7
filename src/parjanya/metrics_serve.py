"""Serving `/metrics`: one exposition server per pool, merged across the pool's processes.

Why a port per pool with multiprocess mode inside it: a tier pool is one process (its hops run on
an event loop), but the classifier pool's work runs in Celery's prefork children, which a server
in the parent cannot see through an in-memory registry. prometheus-client's multiprocess mode has
every process write its samples to files in `PROMETHEUS_MULTIPROC_DIR`, and the parent's server
merges them on each scrape, so one port shows the whole pool and a child that is replaced keeps
its counts. The directory must be in the environment before prometheus-client is imported (it
picks its value class then), and the CLI's own imports load it, so the launcher sets it: `parjanya worker` re-executes itself once
with it set when its pool forks (`multiprocess_relaunch`); a process that does not fork (a tier
pool, the API) keeps prometheus-client's in-memory registry, whose writes cost no lock or file.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server
from prometheus_client.registry import Collector

log = logging.getLogger("parjanya.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> Path | None:
    """The directory this process's samples are written to, when in multiprocess mode."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def relaunch_argv() -> list[str]:
    """This very command line, to run again in a fresh interpreter (`python -m ...` or a script)."""
    return list(sys.orig_argv)


def pool_dir(data_dir: Path, pool: str, pid: int) -> Path:
    """A pool's own directory: no two pools' files mix, and a restart never reads a dead one's."""
    return data_dir / "metrics" / f"{pool}-{pid}"


def multiprocess_relaunch(data_dir: Path, pool: str) -> tuple[list[str], dict[str, str]] | None:
    """What to re-execute so this pool runs in multiprocess mode; None when it already does.

    The directory is emptied first: files left by an earlier process with the same pid would add
    its counts to ours.
    """
    if multiprocess_dir() is not None:
        return None
    directory = pool_dir(data_dir, pool, os.getpid()).resolve()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return relaunch_argv(), {**os.environ, MULTIPROC_ENV: str(directory)}


def remove_pool_dir(data_dir: Path, pool: str) -> None:
    """At exit: drop the directory `multiprocess_relaunch` made for this process, if it did."""
    ours = pool_dir(data_dir, pool, os.getpid()).resolve()
    current = multiprocess_dir()
    if current is not None and current.resolve() == ours:
        shutil.rmtree(ours, ignore_errors=True)


def build_registry(*extra: Collector) -> CollectorRegistry:
    """The registry a pool serves: its processes' samples (merged in multiprocess mode), plus
    `extra` collectors such as the Redis sampler, which live in this registry only."""
    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_dir()
    if directory is not None:
        multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    else:
        registry.register(REGISTRY)
    for collector in extra:
        registry.register(collector)
    return registry


def mark_dead(pid: int) -> None:
    """A forked child is gone: its live gauges (calls in flight) stop counting; counters stay."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


@dataclass
class Exposition:
    """A running `/metrics` server; `port` is the bound one (useful when 0 was asked for)."""

    server: WSGIServer
    thread: Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(registry: CollectorRegistry, host: str, port: int) -> Exposition | None:
    """Start the server in a daemon thread. A port already taken is logged, not fatal: a worker
    that cannot be scraped still serves its queue (two pools of one tier on one host need
    `--metrics-port` apiece)."""
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.error("metrics: cannot listen on %s:%d (%s); no metrics served here", host, port, exc)
        return None
    bound = int(server.server_address[1])
    exposition = Exposition(server, thread, host, bound)
    log.info("metrics on %s", exposition.url)
    return exposition
