"""`parjanya sim`: the simulated OpenAI-compatible provider (a test double, not a model)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parjanya.config import DEFAULT_SIM_PORT


def sim(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = DEFAULT_SIM_PORT,
    latency_scale: Annotated[
        float | None, typer.Option(help="Multiplies model latencies; 0 = instant.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seeds fault and latency draws.")] = None,
    fault_config: Annotated[Path | None, typer.Option(help="JSON file of fault knobs.")] = None,
) -> None:
    """Serve the simulated provider: three sim models, difficulty-driven confidence, fault knobs.

    Flags override PARJANYA_SIM_CONFIG (JSON); faults can also be changed at run time with
    POST /_sim/faults.
    """
    from parjanya.sim.server import run_cli

    typer.echo(f"simulated provider (a test double, not a model) on http://{host}:{port}/v1")
    run_cli(host, port, latency_scale=latency_scale, seed=seed, faults_path=fault_config)
