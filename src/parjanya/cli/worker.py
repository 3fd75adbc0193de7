"""`parjanya worker`: one pool, consuming one queue, as `celery worker -Q <queue>` would."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from parjanya.queues import STAGES, queue_for

#: Celery threads that admit tier hops when hops run on the event loop: they only claim and hand
#: off, so a few keep up with hundreds of calls in flight.
ADMITTING_THREADS = int(os.environ.get("PARJANYA_ADMITTING_THREADS", "4"))


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
) -> None:
    """Start one worker pool on its own queue. Scale a tier by starting more of these."""
    if classifier == (tier is not None):
        raise typer.BadParameter("give exactly one of --tier or --classifier")
    stage = "intake" if classifier else tier
    if stage not in STAGES:
        raise typer.BadParameter(f"--tier must be one of low, mid, high, not {tier!r}")
    from parjanya.app import app as celery_app
    from parjanya.config import get_config

    if stage == "intake":
        threads, pool = concurrency or 2, pool or "prefork"
    elif get_config().reliability.tier_dispatch == "async":
        if concurrency is not None:
            os.environ["PARJANYA_MAX_INFLIGHT"] = str(concurrency)
        threads, pool = ADMITTING_THREADS, pool or "threads"
    else:
        threads, pool = concurrency or 8, pool or "threads"
    celery_app.worker_main(
        worker_argv(stage, concurrency=threads, pool=pool, loglevel=loglevel, events=events)
    )
