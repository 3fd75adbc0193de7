"""The HTTP API's section of the policy."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

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
    # Who may call: "keys" (a bearer API key per request, mapped to its tenant; `parjanya keys`)
    # or "off" (anyone, tasks keep the tenant their body names: local development only).
    auth: Literal["keys", "off"] = "keys"
    # Requests per minute per API key, shared by every API process (GCRA in Redis); a key made
    # with `parjanya keys create --rate N` has its own. Over it: 429 with Retry-After.
    key_rate_per_minute: int = Field(default=6000, ge=1)
    # How much of the minute's budget may go at once (seconds of rate; at least one request).
    key_burst_s: float = Field(default=2.0, ge=0)
    # A key read from the store is trusted this long in each API process: a revoked key stops
    # working within this, and a request costs no key lookup in between.
    key_cache_s: float = Field(default=5.0, ge=0)
    # With keys, the OpenAPI document needs one too (every route but health does); true serves it
    # and `/docs` to anyone, as FastAPI does by default.
    public_docs: bool = False

    @field_validator("auth", mode="before")
    @classmethod
    def _yaml_off_is_off(cls, value: object) -> object:
        """YAML 1.1 reads a bare `off` as false (and `on` as true): take them as meant."""
        if value is False:
            return "off"
        if value is True:
            return "keys"
        return value
