"""`parjanya api`: serve the HTTP API (tasks, OpenAI-compatible chat, health) with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer


def api(
    host: Annotated[str | None, typer.Option(help="Default: api.host of the config.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: api.port of the config.")] = None,
) -> None:
    """Serve /v1/tasks, /v1/chat/completions, /v1/models, /healthz, /readyz and /docs."""
    import uvicorn

    from parjanya.api import create_app
    from parjanya.config import get_config, get_settings

    config = get_config()
    host = host or config.api.host
    port = port or config.api.port
    typer.echo(f"Parjanya API on http://{host}:{port} (OpenAPI at /docs)")
    uvicorn.run(
        create_app(get_settings(), config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
    )
