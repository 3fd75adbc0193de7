"""OpenAI-compatible routes: `POST /v1/chat/completions` and `GET /v1/models`.

A completion is a task: validated, submitted, awaited (woken by the store, up to
`api.chat_timeout_s`) and answered in OpenAI's shape, with the routing decision in `x-parjanya-*`
headers and the `parjanya` field. A task still running at the timeout is a 504 that carries its
id and a `Location`, so the caller can fetch the answer later from `/v1/tasks/{id}`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from parjanya.api.deps import CurrentCaller, State
from parjanya.api.errors import ApiError
from parjanya.api.openai_schema import MODELS, ChatCompletionRequest, completion, routing_headers
from parjanya.api.tasks import read_owned, task_url
from parjanya.schema import TaskStatus

router = APIRouter(prefix="/v1", tags=["openai"])

#: How a task that ended without an answer is told to an OpenAI client.
_FAILED_STATUS = {
    TaskStatus.failed: 400,  # refused by policy (no tier fits the budget, ...)
    TaskStatus.dead_lettered: 502,  # every deployment failed; replayable from the DLQ
    TaskStatus.cancelled: 409,
    TaskStatus.expired: 504,  # its deadline_s passed before an answer; no later call was made
}


@router.post(
    "/chat/completions",
    responses={503: {"description": "Overloaded: the task's SLA class is shed; see Retry-After"}},
)
async def chat_completions(
    body: ChatCompletionRequest, state: State, caller: CurrentCaller
) -> JSONResponse:
    if body.stream:
        raise ApiError(
            400,
            "streaming_unsupported",
            "stream=true is not supported yet: send stream=false (the default)",
            param="stream",
        )
    try:
        task = caller.stamp(body.to_task())
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from exc
    handle = await state.submit(task)
    if not await state.store.wait_done(handle.task_id, state.config.api.chat_timeout_s):
        raise ApiError(
            504,
            "timeout",
            f"task {handle.task_id} did not finish within {state.config.api.chat_timeout_s}s; "
            f"read it later at {task_url(handle.task_id)}",
            task_id=handle.task_id,
            headers={"Location": task_url(handle.task_id), "x-parjanya-task-id": handle.task_id},
        )
    result = await read_owned(state, caller, handle.task_id)
    headers = routing_headers(result)
    if result.status != TaskStatus.succeeded:
        error = result.error
        raise ApiError(
            _FAILED_STATUS.get(result.status, 500),
            error.type if error else result.status.value,
            error.message if error else f"task {result.id} ended {result.status.value}",
            task_id=result.id,
            task_status=result.status.value,
            headers=headers,
        )
    return JSONResponse(completion(result, body.model), headers=headers)


@router.get("/models")
async def models(caller: CurrentCaller) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "parjanya"} for name in MODELS
        ],
    }
