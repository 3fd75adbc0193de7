"""`/v1/tasks`: submit (202 + Location), read, long poll (`?wait=S`) and cancel a task.

The body of a submission is the SDK's `TaskRequest`, validated by FastAPI before the route runs,
so an invalid one is a 422 naming the field and never reaches the store. Submitting, reading and
waiting use the store's asyncio half (`store.aio`), so none of them blocks the event loop and a
thousand long polls hold no thread; cancel runs the SDK store's CANCEL in the threadpool.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from parjanya.api.auth import Caller
from parjanya.api.deps import ApiState, CurrentCaller, State
from parjanya.api.errors import ApiError, task_not_found
from parjanya.schema import TaskRequest, TaskResult, TaskStatus
from parjanya.worker import observe

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])

TaskId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class Accepted(BaseModel):
    id: str
    status: TaskStatus
    created: bool  # False: an earlier submission with the same idempotency_key
    url: str


class CancelAnswer(BaseModel):
    id: str
    outcome: Literal["cancelled", "requested"]  # requested: it ends at its next hop boundary
    task: TaskResult


def task_url(task_id: str) -> str:
    return f"/v1/tasks/{task_id}"


def model_response(
    model: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A model as its JSON body, serialised by pydantic in one pass: building a dict and then
    running `json.dumps` over it was a twelfth of the API's CPU per submission."""
    return Response(
        model.model_dump_json(), status_code, headers=headers, media_type="application/json"
    )


def result_response(result: TaskResult, status_code: int = 200) -> Response:
    return model_response(result, status_code)


async def read_owned(state: ApiState, caller: Caller, task_id: str) -> TaskResult:
    """The task, or 404 when it does not exist or belongs to another tenant (never 403)."""
    result = await state.store.get(task_id)
    if result is None or not caller.owns(result):
        raise task_not_found(task_id)
    return result


@router.post(
    "",
    status_code=202,
    response_model=Accepted,
    responses={503: {"description": "Overloaded: the task's SLA class is shed; see Retry-After"}},
)
async def submit(body: TaskRequest, state: State, caller: CurrentCaller) -> Response:
    created = await state.submit(caller.stamp(body))
    url = task_url(created.task_id)
    accepted = Accepted(
        id=created.task_id, status=TaskStatus.queued, created=created.created, url=url
    )
    return model_response(accepted, 202, {"Location": url})


@router.get("/{task_id}", response_model=TaskResult)
async def read(
    task_id: TaskId,
    state: State,
    caller: CurrentCaller,
    wait: Annotated[
        float | None,
        Query(ge=0, description="Seconds to wait for the task to end (capped by api.max_wait_s)."),
    ] = None,
) -> Response:
    result = await read_owned(state, caller, task_id)
    budget = min(wait or 0.0, state.config.api.max_wait_s)
    if budget > 0 and not result.done and await state.store.wait_done(task_id, budget):
        result = await read_owned(state, caller, task_id)
    return result_response(result)


@router.delete(
    "/{task_id}",
    response_model=CancelAnswer,
    responses={202: {"description": "A running task: it ends cancelled at its next hop boundary"}},
)
async def cancel(task_id: TaskId, state: State, caller: CurrentCaller) -> Response:
    current = await read_owned(state, caller, task_id)
    if current.done:
        raise ApiError(
            409,
            "task_finished",
            f"task {task_id} already ended {current.status.value}",
            task_id=task_id,
            task_status=current.status.value,
        )
    verdict = await run_in_threadpool(
        state.client.store.cancel, task_id, ttl_s=state.config.reliability.result_ttl_s
    )
    after = await read_owned(state, caller, task_id)
    if verdict == "terminal" and after.status != TaskStatus.cancelled:
        raise ApiError(
            409,
            "task_finished",
            f"task {task_id} ended {after.status.value} first",
            task_id=task_id,
            task_status=after.status.value,
        )
    outcome: Literal["cancelled", "requested"] = (
        "requested" if verdict == "requested" else "cancelled"
    )
    if verdict == "cancelled":  # this CANCEL ended it (a worker's claim or commit did not):
        # the API's /metrics counts it, on the stage whose queue it waited on, as a worker would
        observe.ended(after, after.timings[-1].stage if after.timings else "intake")
    answer = CancelAnswer(id=task_id, outcome=outcome, task=after)
    return model_response(answer, 202 if outcome == "requested" else 200)
