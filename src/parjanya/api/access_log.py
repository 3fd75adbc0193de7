"""The API's access log: one structured `request` event per HTTP request, in the workers' format.

Fields: method, route (the route's template, `/v1/tasks/{task_id}`, so a log pipeline groups by
it and ids do not become values of their own; None for a path no route matched), status, ms
(until the response's last byte: a long poll's wait included), tenant (the caller's, once its key
was checked; `current_caller` leaves it in the request's state) and task_id where the request
named or made one (the path, the `x-parjanya-task-id` header, or a 202's `Location`). Nothing of
a request's body or query string is logged, so prompt text never is. A request that raised is
logged with status 500, and one whose client went away before an answer with 499 (nginx's code).
Health probes that pass are logged at debug level, so probes do not drown the log.

A pure ASGI middleware, not Starlette's `BaseHTTPMiddleware`: no task or body copy per request.
It replaces uvicorn's access log (off in `parjanya api`), whose lines carry the raw path.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parjanya.observe.logs import get_logger

#: The request state key `current_caller` writes the caller's tenant to (`request.state.tenant`).
TENANT = "tenant"
_TASKS = "/v1/tasks/"
#: Probes answered well are logged at debug: a kubelet asks every few seconds, per pod.
PROBES = frozenset({"/healthz", "/readyz"})


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def task_id_of(scope: Scope, headers: list[tuple[bytes, bytes]]) -> str | None:
    """The task a request was about: the path's, else the one its response names."""
    named = (scope.get("path_params") or {}).get("task_id")
    if isinstance(named, str):
        return named
    made = _header(headers, b"x-parjanya-task-id")
    if made is not None:
        return made
    location = _header(headers, b"location")
    if location is not None and location.startswith(_TASKS):
        return location[len(_TASKS) :] or None
    return None


def request_fields(
    scope: Scope, status: int, ms: float, headers: list[tuple[bytes, bytes]]
) -> dict[str, Any]:
    route = scope.get("route")
    state = scope.get("state") or {}
    return {
        "method": scope.get("method"),
        "route": getattr(route, "path", None),
        "status": status,
        "ms": round(ms, 1),
        "tenant": state.get(TENANT),
        "task_id": task_id_of(scope, headers),
    }


class AccessLog:
    """Logs each HTTP request once, when it has been answered (or has failed)."""

    def __init__(self, app: ASGIApp, logger_name: str = "parjanya.api") -> None:
        self.app = app
        self.log = get_logger(logger_name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})  # shared with `request.state`, which the routes write
        began = time.perf_counter()
        status = 0
        headers: list[tuple[bytes, bytes]] = []

        async def sending(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            status = status or 500
            raise
        except BaseException:  # cancelled: the client went away (a long poll it gave up on)
            status = status or 499
            raise
        finally:
            fields = request_fields(scope, status, (time.perf_counter() - began) * 1000.0, headers)
            if status >= 500:
                self.log.warning("request", **fields)
            elif fields["route"] in PROBES and status < 400:
                self.log.debug("request", **fields)
            else:
                self.log.info("request", **fields)
