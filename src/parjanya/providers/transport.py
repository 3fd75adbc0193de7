"""How adapters reach a model server: one POST of a JSON body, behind a two-method interface.

An adapter needs exactly one thing from HTTP: post a JSON body under a deadline and read the status,
headers and body that come back. `JsonPoster` is that, and `Reply` is what it returns (an
`httpx.Response` is one, structurally). Two posters:

- `AiohttpPoster`, what workers use: aiohttp's connection pool and C parser, and nothing else on
  the path. Through httpx's client (on an aiohttp transport) a call also built an httpx request,
  merged URLs, ran cookie extraction through `http.cookiejar` and wrapped the headers twice: a
  fifth of a tier worker's CPU at 500 calls in flight (bench/inflight.py).
- `HttpxPoster`, over any `httpx.AsyncClient`: what tests use, with `httpx.MockTransport` and the
  sim's in-process transport. `as_poster` wraps a bare client, so adapters accept either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import httpx
from pydantic_core import to_json

__all__ = ["AiohttpPoster", "AiohttpReply", "HttpxPoster", "JsonPoster", "Reply", "as_poster"]


class Reply(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...  # case-insensitive

    @property
    def content(self) -> bytes: ...

    @property
    def text(self) -> str: ...

    @property
    def is_success(self) -> bool: ...


class JsonPoster(Protocol):
    async def post_json(
        self, url: str, payload: Mapping[str, Any], *, headers: Mapping[str, str], timeout_s: float
    ) -> Reply:
        """The reply of any status; transport failures raise the library's own exceptions."""
        ...


@dataclass(frozen=True)
class AiohttpReply:
    status_code: int
    headers: Mapping[str, str]  # aiohttp's CIMultiDictProxy: case-insensitive
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


class AiohttpPoster:
    """One aiohttp session per process, opened on first use inside the worker's event loop."""

    def __init__(
        self, *, max_connections: int = 4000, keepalive_s: float = 30.0, connect_s: float = 5.0
    ) -> None:
        self.max_connections, self.keepalive_s, self.connect_s = (
            max_connections,
            keepalive_s,
            connect_s,
        )
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.max_connections, keepalive_timeout=self.keepalive_s
        )
        # Model APIs keep no session in cookies; the jar would parse every Set-Cookie for nothing.
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar()
        )
        return self._session

    async def post_json(
        self, url: str, payload: Mapping[str, Any], *, headers: Mapping[str, str], timeout_s: float
    ) -> Reply:
        session = self._session or self._open()
        timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=self.connect_s)
        async with session.post(
            url,
            data=to_json(payload),
            headers={"content-type": "application/json", **headers},
            timeout=timeout,
            allow_redirects=False,  # as httpx: a model endpoint that redirects is misconfigured
        ) as response:
            return AiohttpReply(response.status, response.headers, await response.read())

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HttpxPoster:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post_json(
        self, url: str, payload: Mapping[str, Any], *, headers: Mapping[str, str], timeout_s: float
    ) -> Reply:
        return await self.client.post(url, json=payload, headers=dict(headers), timeout=timeout_s)


def as_poster(client: JsonPoster | httpx.AsyncClient) -> JsonPoster:
    return HttpxPoster(client) if isinstance(client, httpx.AsyncClient) else client
