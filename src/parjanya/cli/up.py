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
    flower: Annotated[
        bool, typer.Option(help="Start Flower (--no-flower: do not; workers send no events).")
    ] = True,
    flower_port: Annotated[int, typer.Option()] = 5555,
    sim_latency_scale: Annotated[float, typer.Option()] = 1.0,
    api_port: Annotated[
        int, typer.Option(min=1, max=65_535, help="Port of the HTTP API (parjanya api).")
    ] = 8000,
    metrics_port_base: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65_530,
            help="Serve /metrics from this port up: classifier +0, low/mid/high +1..3, API +4. "
            "Default: the metrics config (9808 up).",
        ),
    ] = None,
) -> None:
    """Start broker (embedded if none answers), sim, classifier, low/mid/high pools, API and Flower.

    The broker and store is PARJANYA_BROKER_URL (default redis://127.0.0.1:6379/0): a Redis that
    answers there is used, otherwise an embedded redis-server is started on that port, with its
    data, the logs and the local API key under PARJANYA_DATA_DIR (default ./.parjanya). Ctrl-C or
    SIGTERM stops every process it started.
    """
    options = UpOptions(
        demo_tasks=demo,
        exit_after_demo=exit_after_demo,
        tier_concurrency=tier_concurrency,
        flower=flower,
        flower_port=flower_port,
        sim_latency_scale=sim_latency_scale,
        api_port=api_port,
        metrics_port_base=metrics_port_base,
    )
    raise typer.Exit(run_up(options))
