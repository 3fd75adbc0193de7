"""What every HTTP adapter shares: the key, one POST under a deadline, Retry-After, transport errors.

Vendors differ in paths, headers, bodies and error vocabularies (each adapter owns those), but not
in how a call can fail below HTTP: a refused connection, a timeout or a broken stream mean the same
thing whoever is on the other end. So the mapping of transport exceptions into the `base` tree is
here, once, and each adapter's `map_failure` hands exceptions to `map_exception`.

Keys are read from the environment on each call (a rotated key needs no restart), never stored on
an adapter, and passed to `redact` with every message that could quote them.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import httpx
from pydantic import ValidationError

from parjanya.config import Deployment
from parjanya.providers.base import (
    AuthError,
    BadRequest,
    ConnectFailed,
    InternalError,
    MalformedResponse,
    ProviderError,
    ProviderTimeout,
    ServerError,
    redact,
)
from parjanya.providers.transport import JsonPoster, Reply, ResponseTooLarge

__all__ = [
    "api_key",
    "by_status_class",
    "malformed",
    "map_exception",
    "parse_retry_after",
    "post_json",
]

#: What a status means when nothing more specific is known; 1xx/3xx is a broken response.
_STATUS_RANGES: tuple[tuple[range, type[ProviderError]], ...] = (
    (range(500, 600), ServerError),
    (range(400, 500), BadRequest),
)

#: Exceptions from the transport, first match wins (order matters: timeouts are transport errors).
_EXCEPTION_ERRORS: tuple[tuple[type[BaseException], type[ProviderError]], ...] = (
    (httpx.TimeoutException, ProviderTimeout),
    (TimeoutError, ProviderTimeout),  # the overall deadline around the whole call
    (httpx.DecodingError, MalformedResponse),
    (ResponseTooLarge, MalformedResponse),  # over Deployment.max_response_bytes, read no further
    (httpx.UnsupportedProtocol, BadRequest),  # base_url without http(s)://: configuration, not luck
    (httpx.TooManyRedirects, BadRequest),
    (httpx.TransportError, ConnectFailed),  # refused, reset, DNS, proxy, protocol breakage
    (httpx.RequestError, ConnectFailed),
    # aiohttp (the workers' poster); its timeouts are TimeoutError, matched above.
    (aiohttp.ClientPayloadError, MalformedResponse),
    (aiohttp.InvalidURL, BadRequest),
    (aiohttp.ClientError, ConnectFailed),
)


def api_key(deployment: Deployment) -> str | None:
    """The key named by `api_key_env` (None when the deployment needs none); unset is an AuthError."""
    variable = deployment.api_key_env
    if variable is None:
        return None
    key = os.environ.get(variable)
    if not key:
        raise AuthError(f"environment variable {variable} is not set", deployment=deployment.name)
    return key


def by_status_class(status: int) -> type[ProviderError]:
    """The fallback class of a non-2xx status: 5xx → ServerError, 4xx → BadRequest, else broken."""
    return next((e for r, e in _STATUS_RANGES if status in r), MalformedResponse)


def map_exception(
    exc: BaseException, *, deployment: str, secret: str | None = None
) -> ProviderError:
    """Classify a transport exception (or the overall deadline) into the taxonomy."""
    cls = next((e for t, e in _EXCEPTION_ERRORS if isinstance(exc, t)), InternalError)
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return cls(redact(text, secret), deployment=deployment)


async def post_json(
    client: JsonPoster,
    deployment: Deployment,
    url: str,
    payload: Mapping[str, Any],
    *,
    headers: Mapping[str, str],
    secret: str | None,
) -> tuple[Reply, float]:
    """POST `payload` under the deployment's timeout; (response of any status, latency in s).

    The body is read under `deployment.max_response_bytes`. Transport failures, and a body over
    that cap, are raised already classified. The status is the adapter's to judge.
    """
    timeout = deployment.timeout_s
    started = time.perf_counter()
    try:
        # The poster bounds connect and reads; the outer deadline bounds the whole call, so a
        # server that trickles bytes cannot hold a worker forever.
        async with asyncio.timeout(timeout):
            response = await client.post_json(
                url,
                payload,
                headers=headers,
                timeout_s=timeout,
                max_bytes=deployment.max_response_bytes,
            )
    except (httpx.HTTPError, aiohttp.ClientError, TimeoutError, ResponseTooLarge) as exc:
        # `from None`: an httpx exception holds the request, and the request holds the key.
        raise map_exception(exc, deployment=deployment.name, secret=secret) from None
    return response, time.perf_counter() - started


def malformed(
    response: Reply, exc: ValidationError, *, what: str, deployment: str
) -> MalformedResponse:
    """A 2xx body that is not `what`: names the first bad fields, never quotes their values."""
    problems = ", ".join(
        f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['type']}" for e in exc.errors()[:3]
    )
    return MalformedResponse(
        f"HTTP {response.status_code}: not {what} ({problems})",
        deployment=deployment,
        status=response.status_code,
    )


def parse_retry_after(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
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
