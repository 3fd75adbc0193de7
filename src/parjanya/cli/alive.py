"""`parjanya alive`: exit 0 if a worker's liveness heartbeat is fresh and ok (a probe command).

A Kubernetes exec probe, a compose healthcheck or a person runs it against the file a worker writes
(`PARJANYA_LIVENESS_FILE`, else `<data dir>/alive/<host>-<pid>.json`; see `worker/liveness.py`).
It also removes the heartbeats of workers that were killed without a chance to remove their own
(`liveness.prune`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def alive(
    path: Annotated[
        Path | None,
        typer.Argument(help="Heartbeat file (default: PARJANYA_LIVENESS_FILE)."),
    ] = None,
    max_age: Annotated[
        float | None,
        typer.Option(
            help="Seconds a heartbeat stays fresh (default: reliability.liveness_stale_s)."
        ),
    ] = None,
) -> None:
    """Check that a worker is serving: its feeders polled recently and its threads are alive."""
    from parjanya.config import get_config, get_settings
    from parjanya.worker.liveness import PRUNE_AFTER, default_dir, prune, read

    settings, stale_s = get_settings(), get_config().reliability.liveness_stale_s
    path = path or settings.liveness_file
    if path is None:
        raise typer.BadParameter("give the heartbeat file, or set PARJANYA_LIVENESS_FILE")
    ok, why = read(path, max_age if max_age is not None else stale_s)
    prune(default_dir(settings.data_dir), PRUNE_AFTER * stale_s)  # kill -9'd workers' files
    typer.echo(why)
    raise typer.Exit(0 if ok else 1)
