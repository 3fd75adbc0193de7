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
    log_level: Annotated[
        str, typer.Option(help="Lowest level logged; WARNING drops the per-request events.")
    ] = "INFO",
) -> None:
    """Serve /v1/tasks, /v1/chat/completions, /v1/models, /healthz, /readyz and /docs.

    Logs as the workers do (PARJANYA_LOG_FORMAT: readable columns in a terminal, JSON lines
    otherwise): one `request` event per request (method, route, status, ms, tenant, task_id;
    never prompt text), and uvicorn's own records in the same format.
    """
    import uvicorn

    from parjanya.api import create_app
    from parjanya.config import get_config, get_settings
    from parjanya.observe.logs import configure_logging, get_logger

    settings, config = get_settings(), get_config()
    configure_logging(settings.log_format, level=log_level, show_text=settings.log_text)
    log = get_logger("parjanya.api")
    host = host or config.api.host
    port = port or config.api.port
    log.info("listening", url=f"http://{host}:{port}", openapi="/docs")
    serve_api_metrics(settings, config, metrics_port)  # logs its URL (`metrics_serve.serve`)
    uvicorn.run(
        create_app(settings, config),
        host=host,
        port=port,
        log_config=None,  # uvicorn's records reach the root handler `configure_logging` set
        log_level=log_level.lower(),
        access_log=False,  # `api/access_log.py` logs each request instead, by route template
    )


def serve_api_metrics(
    settings: Settings, config: ParjanyaConfig, port: int | None
) -> Exposition | None:
    """The API's own /metrics: its process's series and the queue sampler (one process, so
    prometheus-client's in-memory registry)."""
    from parjanya.metrics_sampler import Sampler
    from parjanya.metrics_serve import build_registry, serve

    port = settings.metrics_port if port is None else port  # then the config
    if port is None and config.metrics.enabled:
        port = config.metrics.port_for("api")
    if port is None:
        return None
    return serve(build_registry(Sampler.from_settings(settings, config)), config.metrics.host, port)
