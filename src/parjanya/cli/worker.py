"""`parjanya worker`: one pool, consuming one queue, as `celery worker -Q <queue>` would."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from parjanya.queues import STAGES, queue_for


def worker_argv(
    stage: str, *, concurrency: int, pool: str, loglevel: str, events: bool
) -> list[str]:
    return [
        "worker",
        "-Q", queue_for(stage),  # type: ignore[arg-type]
        "-n", f"{stage}.{os.getpid()}@%h",
        "-c", str(concurrency),
        "-P", pool,
        "--loglevel", loglevel,
        "--without-mingle",
        "--without-gossip",
        *(["-E"] if events else []),
    ]  # fmt: skip


def worker(
    tier: Annotated[
        str | None, typer.Option(help="Consume parjanya.tier.<tier>: low, mid or high.")
    ] = None,
    classifier: Annotated[
        bool, typer.Option("--classifier", help="Consume parjanya.intake.")
    ] = False,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            help="Classifier: parallel tasks (default 2). Tier: model calls in flight in this "
            "process (default 1000); with tier_dispatch=blocking, Celery threads (default 8).",
        ),
    ] = None,
    pool: Annotated[str | None, typer.Option(help="Celery pool: prefork, threads or solo.")] = None,
    loglevel: Annotated[str, typer.Option()] = "INFO",
    events: Annotated[
        bool, typer.Option(help="Send task events (for Flower's task views).")
    ] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65_535,
            help="Serve /metrics here (0: any free port, logged). Default: PARJANYA_METRICS_PORT, "
            "else the pool's port in the metrics config (9808 + 0 classifier, 1 low, 2 mid, 3 high).",
        ),
    ] = None,
) -> None:
    """Start one worker pool on its own queue. Scale a tier by starting more of these."""
    if classifier == (tier is not None):
        raise typer.BadParameter("give exactly one of --tier or --classifier")
    stage = "intake" if classifier else tier
    if stage not in STAGES:
        raise typer.BadParameter(f"--tier must be one of low, mid, high, not {tier!r}")
    _metrics_launch(stage, pool, metrics_port)  # may re-execute this command; see there
    from parjanya.app import app as celery_app
    from parjanya.config import get_config, get_settings
    from parjanya.observe.logs import configure_logging, keep_logging
    from parjanya.worker.strategy import strategy_for

    settings = get_settings()
    configure_logging(settings.log_format, level=loglevel, show_text=settings.log_text)
    keep_logging()  # Celery leaves the handlers above in place (and its prefork children too)

    if stage == "intake":
        threads, pool = concurrency or 2, pool or "prefork"
    else:
        reliability = get_config().reliability
        strategy = strategy_for(reliability)
        if concurrency is not None and strategy.concurrency_is_inflight:
            # The settings mechanism carries it to the worker context this process builds.
            os.environ["PARJANYA_MAX_INFLIGHT"] = str(concurrency)
        admitting = get_settings().admitting_threads or reliability.admitting_threads
        threads, pool = strategy.celery_threads(concurrency, admitting), pool or "threads"
    celery_app.worker_main(
        worker_argv(stage, concurrency=threads, pool=pool, loglevel=loglevel, events=events)
    )
    from parjanya.metrics_serve import remove_pool_dir

    remove_pool_dir(get_settings().data_dir, stage)
    from parjanya.worker.liveness import EXIT_DEAF

    if celery_app.worker_process.deaf.is_set():  # a supervisor must restart it
        raise typer.Exit(EXIT_DEAF)


def _metrics_launch(stage: str, pool: str | None, port: int | None) -> None:
    """Give the pool its /metrics port, and multiprocess mode when its work runs in forked
    children (the classifier's prefork pool): that mode must be on before prometheus-client is
    imported, which this CLI's own imports have done, so the command re-executes itself once with
    `PROMETHEUS_MULTIPROC_DIR` set (`metrics_serve.py` says why this design)."""
    from parjanya.config import get_config, get_settings
    from parjanya.metrics_serve import multiprocess_relaunch

    config = get_config().metrics
    if port is None:  # the command line, then PARJANYA_METRICS_PORT, then the config
        port = get_settings().metrics_port
    if port is None and config.enabled:
        port = config.port_for(stage)  # type: ignore[arg-type]
    if port is None:
        return
    os.environ["PARJANYA_METRICS_PORT"] = str(port)  # the worker's settings carry it on
    forks = (pool or ("prefork" if stage == "intake" else "threads")) == "prefork"
    relaunch = multiprocess_relaunch(get_settings().data_dir, stage) if forks else None
    if relaunch is not None:
        argv, env = relaunch
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, argv, env)
