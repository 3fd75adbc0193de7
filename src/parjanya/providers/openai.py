"""The OpenAI chat-completions adapter (also any OpenAI-compatible server: vLLM, the sim, gateways).

It translates and classifies, nothing more: `ChatRequest` → `POST {base_url}/chat/completions` →
`ChatResponse`, and every failure → one type of the `base` tree. Classification of statuses and
transport exceptions lives in `map_failure` alone; what a 2xx body can still get wrong (not
JSON, missing fields, a content-filter finish) is decided in `parse_completion`. Retrying, falling
back and pricing belong to the caller.

The key is read from the environment on each call (so a rotated key needs no restart), sent only in
the Authorization header, never stored on the adapter, and scrubbed from every error message.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from parjanya.config import Deployment
from parjanya.providers.base import (
    AuthError,
    BadRequest,
    ChatRequest,
    ChatResponse,
    ConnectFailed,
    ContentFiltered,
    ContextTooLong,
    InternalError,
    MalformedResponse,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    ServerError,
    redact,
)

__all__ = [
    "OpenAIProvider",
    "build_payload",
    "map_failure",
    "parse_completion",
    "parse_retry_after",
]

#: Statuses whose meaning does not depend on the body.
_STATUS_ERRORS: dict[int, type[ProviderError]] = {
    401: AuthError,
    403: AuthError,
    408: ProviderTimeout,
    413: ContextTooLong,  # the body itself was too large for the gateway
    504: ProviderTimeout,
}

#: OpenAI `error.code` values that say more than a 4xx status does.
_CODE_ERRORS: dict[str, type[ProviderError]] = {
    "context_length_exceeded": ContextTooLong,
    "string_above_max_length": ContextTooLong,
    "content_filter": ContentFiltered,  # Azure OpenAI
    "content_policy_violation": ContentFiltered,
    "invalid_api_key": AuthError,
}

#: Everything else, by status class; a status outside these (1xx, 3xx) is a broken response.
_STATUS_RANGES: tuple[tuple[range, type[ProviderError]], ...] = (
    (range(500, 600), ServerError),
    (range(400, 500), BadRequest),
)

#: Exceptions from the transport, first match wins (order matters: timeouts are transport errors).
_EXCEPTION_ERRORS: tuple[tuple[type[BaseException], type[ProviderError]], ...] = (
    (httpx.TimeoutException, ProviderTimeout),
    (TimeoutError, ProviderTimeout),  # the overall deadline around the whole call
    (httpx.DecodingError, MalformedResponse),
    (httpx.UnsupportedProtocol, BadRequest),  # base_url without http(s)://: configuration, not luck
    (httpx.TooManyRedirects, BadRequest),
    (httpx.TransportError, ConnectFailed),  # refused, reset, DNS, proxy, protocol breakage
    (httpx.RequestError, ConnectFailed),
)

#: finish_reason values that make a 200 a failure.
_FINISH_ERRORS: dict[str, type[ProviderError]] = {"content_filter": ContentFiltered}


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _TokenLogprob(_Wire):
    logprob: float


class _Logprobs(_Wire):
    content: list[_TokenLogprob] | None = None


class _Message(_Wire):
    content: str | None  # required key; null when the model refused or only called tools
    refusal: str | None = None


class _Choice(_Wire):
    message: _Message
    finish_reason: str | None = None
    logprobs: _Logprobs | None = None


class _Usage(_Wire):
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)


class _Completion(_Wire):
    id: str | None = None
    model: str | None = None
    choices: list[_Choice] = Field(min_length=1)
    usage: _Usage | None = None


class _ErrorDetail(_Wire):
    message: str = ""
    code: str | int | None = None


class _ErrorBody(_Wire):
    error: _ErrorDetail


def parse_retry_after(headers: httpx.Headers, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms` (OpenAI) or `Retry-After` (seconds or an HTTP date)."""
    millis = _finite(headers.get("retry-after-ms"))
    if millis is not None:
        return max(0.0, millis / 1000)
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _finite(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _finite(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _error_detail(response: httpx.Response) -> tuple[str | None, str]:
    """(OpenAI error code, human message) from an error body, tolerating non-JSON bodies."""
    try:
        detail = _ErrorBody.model_validate_json(response.content).error
    except ValidationError:
        return None, response.text[:200].strip()
    return (str(detail.code) if detail.code is not None else None), detail.message[:300]


def map_failure(
    failure: httpx.Response | BaseException, *, deployment: str, secret: str | None = None
) -> ProviderError:
    """Classify a non-2xx response or a transport exception into the taxonomy. The one place."""
    if not isinstance(failure, httpx.Response):
        cls = next((e for t, e in _EXCEPTION_ERRORS if isinstance(failure, t)), InternalError)
        text = f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__
        return cls(redact(text, secret), deployment=deployment)
    status = failure.status_code
    code, detail = _error_detail(failure)
    message = redact(f"HTTP {status}: {detail}" if detail else f"HTTP {status}", secret)
    if status == 429:
        retry_after = parse_retry_after(failure.headers)
        return RateLimited(message, deployment=deployment, retry_after=retry_after)
    by_code = _CODE_ERRORS.get(code or "") if 400 <= status < 500 else None
    by_range = next((e for r, e in _STATUS_RANGES if status in r), MalformedResponse)
    cls = by_code or _STATUS_ERRORS.get(status) or by_range
    return cls(message, deployment=deployment, status=status)


def build_payload(deployment: Deployment, request: ChatRequest) -> dict[str, Any]:
    """The JSON body of the call; optional fields are left out rather than sent as null."""
    optional: dict[str, Any] = {
        "temperature": request.temperature,
        "stop": request.stop or None,
        "logprobs": True if request.logprobs else None,
        "response_format": {"type": "json_object"} if request.response_format == "json" else None,
    }
    return {
        "model": deployment.model,
        "messages": [m.model_dump(exclude_none=True) for m in request.messages],
        "max_tokens": request.max_tokens,
        **{k: v for k, v in optional.items() if v is not None},
    }


def parse_completion(
    response: httpx.Response, *, deployment: Deployment, latency_s: float, secret: str | None = None
) -> ChatResponse:
    """Read a 2xx body; a body that is not a usable completion is an error, not an empty answer."""
    try:
        body = _Completion.model_validate_json(response.content)
    except ValidationError as exc:
        problems = ", ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['type']}" for e in exc.errors()[:3]
        )
        raise MalformedResponse(
            f"HTTP {response.status_code}: not a chat completion ({problems})",
            deployment=deployment.name,
            status=response.status_code,
        ) from None
    choice = body.choices[0]
    finish_error = _FINISH_ERRORS.get(choice.finish_reason or "")
    if finish_error is not None:
        raise finish_error(
            redact(f"finish_reason {choice.finish_reason!r}", secret),
            deployment=deployment.name,
            status=response.status_code,
        )
    tokens = choice.logprobs.content if choice.logprobs is not None else None
    usage = body.usage or _Usage()
    return ChatResponse(
        text=choice.message.content or choice.message.refusal or "",
        finish_reason=choice.finish_reason,
        model=body.model or deployment.model,
        tokens_in=usage.prompt_tokens,
        tokens_out=usage.completion_tokens,
        logprobs=[t.logprob for t in tokens] if tokens else None,
        response_id=body.id,
        latency_s=latency_s,
        deployment=deployment.name,
    )


class OpenAIProvider:
    """`Provider` for one OpenAI-compatible deployment, over a client the caller owns and closes."""

    def __init__(self, deployment: Deployment, client: httpx.AsyncClient) -> None:
        self.deployment = deployment
        self._client = client

    def __repr__(self) -> str:
        return f"OpenAIProvider(deployment={self.deployment.name!r})"

    def _api_key(self) -> str | None:
        variable = self.deployment.api_key_env
        if variable is None:
            return None
        key = os.environ.get(variable)
        if not key:
            raise AuthError(
                f"environment variable {variable} is not set", deployment=self.deployment.name
            )
        return key

    async def chat(self, request: ChatRequest) -> ChatResponse:
        key = self._api_key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        url = f"{self.deployment.base_url.rstrip('/')}/chat/completions"
        timeout = self.deployment.timeout_s
        started = time.perf_counter()
        try:
            # httpx bounds each phase (connect, each read); the outer deadline bounds the whole
            # call, so a server that trickles bytes cannot hold a worker forever.
            async with asyncio.timeout(timeout):
                response = await self._client.post(
                    url,
                    json=build_payload(self.deployment, request),
                    headers=headers,
                    timeout=timeout,
                )
        except (httpx.HTTPError, TimeoutError) as exc:
            # `from None`: the httpx exception holds the request, and the request holds the key.
            raise map_failure(exc, deployment=self.deployment.name, secret=key) from None
        latency_s = time.perf_counter() - started
        if not response.is_success:
            raise map_failure(response, deployment=self.deployment.name, secret=key)
        return parse_completion(
            response, deployment=self.deployment, latency_s=latency_s, secret=key
        )
