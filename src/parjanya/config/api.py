"""The HTTP API's section of the policy."""

from __future__ import annotations

from pydantic import Field

from parjanya.config.base import Strict


class ApiConfig(Strict):
    """The HTTP API (`parjanya api`, and `parjanya up` on :8000)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65_535)
    # A body larger than this is refused with 413 before it is parsed (4 MiB: the default
    # limits.max_request_bytes, which bounds a submitted request as JSON).
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # POST /v1/chat/completions waits this long for the answer, then answers 504 with the task id.
    chat_timeout_s: float = Field(default=60.0, gt=0)
    # GET /v1/tasks/{id}?wait=S waits at most this long, whatever S asks for.
    max_wait_s: float = Field(default=60.0, gt=0)
    # /readyz asks the workers at most this often; other probes in between get the cached answer.
    ready_cache_s: float = Field(default=2.0, ge=0)
