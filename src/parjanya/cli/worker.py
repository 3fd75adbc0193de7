"""`parjanya worker`: one pool, consuming one queue, as `celery worker -Q <queue>` would."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from parjanya.queues import STAGES, queue_for


def worker_argv(
    stage: str, *, concurrency: int, pool: str, loglevel: str, events: bool
) -> list[str]:
    return [
        "worker",
        "-Q",
        queue_for(stage),  # type: ignore[arg-type]
        "-n",
        f"{stage}.{os.getpid()}@%h",
        "-c",
        str(concurrency),
        "-P",
        pool,
        "--loglevel",
        loglevel,
        "--without-mingle",
        "--without-gossip",
        *(["-E"] if events else []),
    ]


def worker(
    tier: Annotated[
        str | None, typer.Option(help="Consume parjanya.tier.<tier>: low, mid or high.")
    ] = None,
    classifier: Annotated[
        bool, typer.Option("--classifier", help="Consume parjanya.intake.")
    ] = False,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1)] = 2,
    pool: Annotated[str, typer.Option(help="Celery pool: prefork, threads or solo.")] = "prefork",
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

    celery_app.worker_main(
        worker_argv(stage, concurrency=concurrency, pool=pool, loglevel=loglevel, events=events)
    )
