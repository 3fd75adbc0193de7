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

Both read a body under the caller's `max_bytes` (`Deployment.max_response_bytes`), counting the
bytes after content decoding, so a compressed bomb counts at its decoded size: a declared
Content-Length over it is refused before any of the body is read, and a body that grows past it
is dropped at that point and its connection closed, never read to the end. `ResponseTooLarge` is
what they raise; `http.map_exception` files it as a malformed response. Without the cap a provider
answering 200 with 1 GiB was read whole, twice with the retry.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import httpx
from pydantic_core import to_json

__all__ = [
    "AiohttpPoster",
    "AiohttpReply",
    "BodyReply",
    "HttpxPoster",
    "JsonPoster",
    "Reply",
    "ResponseTooLarge",
    "as_poster",
    "read_capped",
]


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
        self,
        url: str,
        payload: Mapping[str, Any],
        *,
        headers: Mapping[str, str],
        timeout_s: float,
        max_bytes: int,
    ) -> Reply:
        """The reply of any status, its body at most `max_bytes` (else `ResponseTooLarge`).

        Transport failures raise the library's own exceptions.
        """
        ...


class ResponseTooLarge(Exception):
    """A response body over the caller's cap: nothing of it is kept, nor was it read to the end."""

    def __init__(self, max_bytes: int, *, declared: int | None = None) -> None:
        said = f" (Content-Length {declared})" if declared is not None else ""
        super().__init__(f"response body over {max_bytes} bytes{said}; read no further")
        self.max_bytes = max_bytes


def declared_length(headers: Mapping[str, str]) -> int | None:
    value = headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


async def read_capped(chunks: AsyncIterator[bytes], max_bytes: int) -> bytes:
    """The whole body from `chunks`, or `ResponseTooLarge` as soon as it passes `max_bytes`."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > max_bytes:
            raise ResponseTooLarge(max_bytes)
    return bytes(body)


@dataclass(frozen=True)
class BodyReply:
    """A reply whose body was read whole, under the cap: what both posters return."""

    status_code: int
    headers: Mapping[str, str]  # aiohttp's CIMultiDictProxy: case-insensitive
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


AiohttpReply = BodyReply  # its name before the httpx poster returned one too


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
        self,
        url: str,
        payload: Mapping[str, Any],
        *,
        headers: Mapping[str, str],
        timeout_s: float,
        max_bytes: int,
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
            try:
                return BodyReply(
                    response.status, response.headers, await _read(response, max_bytes)
                )
            except ResponseTooLarge:
                response.close()  # the rest of the body must not be read into the pool's connection
                raise

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    declared = declared_length(response.headers)
    if declared is not None and declared > max_bytes:
        raise ResponseTooLarge(max_bytes, declared=declared)
    encoded = response.headers.get("content-encoding", "identity") != "identity"
    if declared is not None and not encoded:
        return await response.read()  # the parser stops at Content-Length: one read, as before
    return await read_capped(response.content.iter_any(), max_bytes)


class HttpxPoster:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post_json(
        self,
        url: str,
        payload: Mapping[str, Any],
        *,
        headers: Mapping[str, str],
        timeout_s: float,
        max_bytes: int,
    ) -> Reply:
        async with self.client.stream(
            "POST", url, json=payload, headers=dict(headers), timeout=timeout_s
        ) as response:
            declared = declared_length(response.headers)
            if declared is not None and declared > max_bytes:
                raise ResponseTooLarge(max_bytes, declared=declared)
            body = await read_capped(_decoded(response, max_bytes), max_bytes)
        return BodyReply(response.status_code, response.headers, body)


#: zlib window bits per Content-Encoding: 15 + 32 reads a gzip or a zlib header (HTTP's deflate
#: is zlib-wrapped), detected from the data itself.
_INFLATE_WBITS = {"gzip": 15 + 32, "x-gzip": 15 + 32, "deflate": 15 + 32}


async def _decoded(response: httpx.Response, max_bytes: int) -> AsyncIterator[bytes]:
    """The body decoded at most `max_bytes + 1` at a time from each compressed chunk.

    httpx inflates a whole network chunk at once, so 16 KiB of gzip became 16 MiB in one step,
    before any cap could look at it. gzip and deflate are inflated here, with zlib's `max_length`;
    another encoding (br, zstd, when their packages are installed) is left to httpx.
    """
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    wbits = _INFLATE_WBITS.get(encoding)
    if wbits is None or response.is_stream_consumed:  # consumed: built in memory (MockTransport)
        async for chunk in response.aiter_bytes():
            yield chunk
        return
    inflater = zlib.decompressobj(wbits)
    try:
        async for chunk in response.aiter_raw():
            data = chunk
            while data:
                yield inflater.decompress(data, max_bytes + 1)
                data = inflater.unconsumed_tail
        yield inflater.flush()
    except zlib.error as exc:  # as httpx reports a body that does not inflate
        raise httpx.DecodingError(f"{encoding} body does not inflate: {exc}") from None


def as_poster(client: JsonPoster | httpx.AsyncClient) -> JsonPoster:
    return HttpxPoster(client) if isinstance(client, httpx.AsyncClient) else client
