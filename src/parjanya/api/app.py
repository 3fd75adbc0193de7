"""The API's app factory: settings and policy in, a FastAPI app out; no module state, no env reads.

The process's clients are built by the lifespan (so creating an app does no I/O and a test can
build one per case), and every route reaches them through `deps.api_state`. The body-size limit
is the outer layer, so an oversized body is refused before any route or parser sees it; only the
access log (`access_log.py`) wraps it, so every request is logged once, refused ones included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from parjanya.api import errors, health, openai, tasks
from parjanya.api.access_log import AccessLog
from parjanya.api.deps import ApiState, CurrentCaller, declare_bearer
from parjanya.api.limits import BodySizeLimit
from parjanya.config import ParjanyaConfig, Settings


def create_app(settings: Settings, config: ParjanyaConfig) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = ApiState.open(settings, config)
        app.state.parjanya = state
        try:
            yield
        finally:
            await state.close()

    # Every route but health needs a key, the OpenAPI document too, unless the docs are public
    # (or there are no keys): then FastAPI serves it and /docs as usual.
    public = config.api.public_docs or config.api.auth == "off"
    app = FastAPI(
        title="Parjanya",
        summary="Complexity-aware routing of AI-agent tasks: tasks and OpenAI-compatible chat.",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url="/openapi.json" if public else None,
        docs_url="/docs" if public else None,
        redoc_url=None,
        # FastAPI's own OpenTelemetry layer follows the process's choice (`settings.otel`): when
        # off, no request pays for asking whether a provider is configured.
        telemetry=None
        if settings.otel
        else {"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    if not public:

        @app.get("/openapi.json", include_in_schema=False)
        async def openapi_document(_: CurrentCaller) -> JSONResponse:
            return JSONResponse(app.openapi())

    app.add_middleware(BodySizeLimit, max_bytes=config.api.max_body_bytes)
    app.add_middleware(AccessLog)  # added last, so outermost: a 413 is logged too
    errors.install(app)
    # Every route but health's depends on `current_caller` (a key) in its own signature; a
    # router-wide copy would be walked again on every request. tests/unit/test_api_keys.py
    # checks, from the OpenAPI document, that no other route goes without it.
    routers = (health.router, tasks.router, openai.router)
    for router in routers:
        app.include_router(router)
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # FastAPI's document, built once, then the key scheme
            declare_bearer(plain_openapi(), [route for r in routers for route in r.routes])
        return app.openapi_schema or plain_openapi()

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend it
    return app
