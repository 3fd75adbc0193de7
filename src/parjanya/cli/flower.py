"""`parjanya flower`: Flower on :5555 with every Parjanya queue on its Broker page."""

from __future__ import annotations

from typing import Annotated

import typer


def flower(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="HTTP port.")] = 5555,
    address: Annotated[
        str, typer.Option(help="Interface to listen on (0.0.0.0 in a container).")
    ] = "127.0.0.1",
) -> None:
    """Start Flower. Other Flower options pass through, e.g. --broker_api=..., --basic_auth=..."""
    from parjanya.app import app as celery_app
    from parjanya.runtime.flower import run_flower

    run_flower(celery_app, [f"--port={port}", f"--address={address}", *ctx.args])
