"""Every error the API answers, in one shape: `{"error": {"type", "message", "code", ...}}`.

That is OpenAI's error shape, so the official client raises its typed errors with our message. The
one exception is request validation (422), which keeps FastAPI's shape: `detail[].loc` is the path
of the offending field.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from parjanya.client import Overloaded, TaskNotFound, TenantOverBudget
from parjanya.store import IdempotencyConflict


class ApiError(Exception):
    """An answer other than success, raised by a route and rendered by `install`."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.headers = headers or {}
        self.extra = extra


class BodyTooLarge(HTTPException):
    """Raised while the body streams in. An HTTPException, so FastAPI's body reader re-raises it
    instead of turning it into a 400 'error parsing the body'."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than {limit} bytes")
        self.limit = limit


def error_body(type_: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"type": type_, "code": type_, "message": message, "param": None, **extra}}


def too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        error_body("request_too_large", f"request body is larger than {limit} bytes", limit=limit),
        status_code=413,
    )


def task_not_found(task_id: str) -> ApiError:
    return ApiError(404, "task_not_found", f"no task {task_id}", task_id=task_id)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(
        error_body(exc.type, exc.message, **exc.extra), status_code=exc.status, headers=exc.headers
    )


async def _body_too_large(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BodyTooLarge)
    return too_large(exc.limit)


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    task_id = str(exc.args[0]) if exc.args else ""
    return await _api_error(request, task_not_found(task_id))


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IdempotencyConflict)
    return await _api_error(
        request, ApiError(409, "idempotency_conflict", str(exc), task_id=exc.task_id)
    )


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    """A request that passed the route's schema but not a later check (the configured limits):
    FastAPI's 422 shape, with `loc` starting at the body."""
    assert isinstance(exc, ValidationError)
    errors = [
        {**e, "loc": ("body", *e["loc"]), "ctx": {k: str(v) for k, v in e.get("ctx", {}).items()}}
        for e in exc.errors(include_url=False)
    ]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


async def _overloaded(request: Request, exc: Exception) -> JSONResponse:
    """Load shedding refused the task's class: 503 with Retry-After (whole seconds, rounded up)."""
    assert isinstance(exc, Overloaded)
    retry_after = str(max(1, math.ceil(exc.retry_after_s)))
    error = ApiError(
        503,
        "overloaded",
        str(exc),
        headers={"Retry-After": retry_after},
        sla=exc.sla,
        retry_after_s=exc.retry_after_s,
    )
    return await _api_error(request, error)


async def _over_budget(request: Request, exc: Exception) -> JSONResponse:
    """A tenant whose budget is spent: 429 with Retry-After until the budget resets."""
    assert isinstance(exc, TenantOverBudget)
    return await _api_error(
        request,
        ApiError(
            429,
            "budget_exceeded",
            str(exc),
            headers={"Retry-After": str(exc.retry_after_s)},
        ),
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(BodyTooLarge, _body_too_large)
    app.add_exception_handler(TaskNotFound, _not_found)
    app.add_exception_handler(IdempotencyConflict, _conflict)
    app.add_exception_handler(ValidationError, _invalid)
    app.add_exception_handler(Overloaded, _overloaded)
    app.add_exception_handler(TenantOverBudget, _over_budget)
