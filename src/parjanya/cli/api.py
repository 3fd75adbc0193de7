"""`parjanya api`: serve the HTTP API (tasks, OpenAI-compatible chat, health) with uvicorn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from parjanya.config import ParjanyaConfig, Settings
    from parjanya.metrics_serve import Exposition


def api(
    host: Annotated[str | None, typer.Option(help="Default: api.host of the config.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: api.port of the config.")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65_535,
            help="Serve /metrics here. Default: PARJANYA_METRICS_PORT, else metrics.port_base + 4 "
            "(9812) unless metrics are disabled.",
        ),
    ] = None,
) -> None:
    """Serve /v1/tasks, /v1/chat/completions, /v1/models, /healthz, /readyz and /docs."""
    import uvicorn

    from parjanya.api import create_app
    from parjanya.config import get_config, get_settings

    config = get_config()
    host = host or config.api.host
    port = port or config.api.port
    typer.echo(f"Parjanya API on http://{host}:{port} (OpenAPI at /docs)")
    exposition = serve_api_metrics(get_settings(), config, metrics_port)
    if exposition is not None:
        typer.echo(f"metrics on {exposition.url}")
    uvicorn.run(
        create_app(get_settings(), config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
    )


def serve_api_metrics(
    settings: Settings, config: ParjanyaConfig, port: int | None
) -> Exposition | None:
    """The API's own /metrics: its process's series and the queue sampler (one process, so
    prometheus-client's in-memory registry)."""
    from parjanya.metrics_sampler import RedisSampler
    from parjanya.metrics_serve import build_registry, serve

    port = settings.metrics_port if port is None else port  # then the config
    if port is None and config.metrics.enabled:
        port = config.metrics.port_for("api")
    if port is None:
        return None
    return serve(
        build_registry(RedisSampler.from_settings(settings, config)), config.metrics.host, port
    )
