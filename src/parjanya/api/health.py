"""`/healthz` (the process answers) and `/readyz` (it can do work; see `readiness.py`)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from parjanya.api.deps import State

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: State) -> JSONResponse:
    report = await state.readiness.report()
    return JSONResponse(report, status_code=200 if report["ready"] else 503)
