"""`parjanya up`: the whole system on one machine."""

from __future__ import annotations

from typing import Annotated

import typer

from parjanya.runtime.up import UpOptions, run_up


def up(
    demo: Annotated[int, typer.Option(help="Demo tasks to push through once up (0: none).")] = 20,
    exit_after_demo: Annotated[bool, typer.Option(help="Stop everything after the demo.")] = False,
    tier_concurrency: Annotated[
        int, typer.Option(min=1, help="Model calls in flight per tier pool.")
    ] = 200,
    flower: Annotated[bool, typer.Option(help="Start Flower on :5555.")] = True,
    flower_port: Annotated[int, typer.Option()] = 5555,
    sim_latency_scale: Annotated[float, typer.Option()] = 1.0,
) -> None:
    """Start broker (embedded if none answers), sim, classifier, low/mid/high pools and Flower."""
    options = UpOptions(
        demo_tasks=demo,
        exit_after_demo=exit_after_demo,
        tier_concurrency=tier_concurrency,
        flower=flower,
        flower_port=flower_port,
        sim_latency_scale=sim_latency_scale,
    )
    raise typer.Exit(run_up(options))
