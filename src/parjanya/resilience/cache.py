"""Exact-match response cache: the same request to the same model is answered once per TTL.

The key is the sha256 of a canonical JSON (sorted keys, no whitespace) of everything that shapes
the answer: the model, the messages (role, content, name, exactly as sent: no whitespace folding,
since "a  b" and "a b" are different prompts), max_tokens, temperature, response_format, stop,
tools and tool_choice. `logprobs` is left out: it asks for metadata, not another answer, and a
cached response keeps the logprobs it came with.

Two copies are written per answer:

- fresh, `cache:fresh:<sha256 with model>`, for `CacheConfig.ttl_s`: served on the next identical
  call to the same model, marked `cached=True` (tokens kept for information; the caller charges 0);
- stale, `cache:stale:<sha256 without model>`, for `CacheConfig.stale_ttl_s` (0: none): served only
  through `stale_lookup`, the fallback chain's last resort when every deployment failed, and then
  from whichever model answered that request last.

Only answers worth repeating are stored: never an error, never one cut short (`finish_reason`
"length"/"max_tokens") or filtered, never an empty one. Those would pin a bad answer for an hour,
while calling again may do better.

Opting out: `CacheConfig.enabled` turns the cache off for every request; one task (e.g.
`TaskRequest.cache = False`) runs its calls inside `with bypass_cache(): ...`, which makes the
middleware neither read nor write, and `stale_lookup` return None, for everything awaited inside
(a contextvar, so concurrent tasks in one worker do not see each other's choice).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis
from pydantic import ValidationError

from parjanya import keys, metrics
from parjanya.config import CacheConfig, Deployment
from parjanya.connect import async_redis_client
from parjanya.providers.base import ChatRequest, ChatResponse
from parjanya.resilience.base import Next

__all__ = [
    "CacheKeys",
    "CacheMiddleware",
    "CacheStore",
    "MemoryCacheStore",
    "RedisCacheStore",
    "bypass_cache",
    "cache_bypassed",
    "cache_keys",
    "cacheable",
]

log = logging.getLogger(__name__)

KEY_VERSION = 1  # bump when the canonical form changes, so old entries are simply never read
UNCACHEABLE_FINISH = frozenset({"length", "max_tokens", "content_filter"})


class CacheStore(Protocol):
    """Strings with expiry: all the cache needs from a backend."""

    async def get(self, key: str) -> str | None: ...

    async def put_many(self, entries: Sequence[tuple[str, str, int]]) -> None:
        """Store each (key, value, ttl in seconds)."""


class MemoryCacheStore:
    """One process's cache with the same expiry semantics; `clock` is injectable for tests."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._entries: dict[str, tuple[str, float]] = {}

    async def get(self, key: str) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= self.clock():
            del self._entries[key]
            return None
        return entry[0]

    async def put_many(self, entries: Sequence[tuple[str, str, int]]) -> None:
        now = self.clock()
        for key, value, ttl_s in entries:
            self._entries[key] = (value, now + ttl_s)


class RedisCacheStore:
    """The cache shared by every worker: plain SET EX values, one pipeline per write."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    @classmethod
    def from_url(cls, url: str) -> RedisCacheStore:
        return cls(async_redis_client(url, socket_timeout=5))

    async def get(self, key: str) -> str | None:
        value: Any = await self.redis.get(key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def put_many(self, entries: Sequence[tuple[str, str, int]]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for key, value, ttl_s in entries:
            pipe.set(key, value, ex=ttl_s)
        await pipe.execute()


# --- keys -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheKeys:
    fresh: str  # this request to this model
    stale: str  # this request to any model


def _canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()


def _shape(request: ChatRequest) -> dict[str, Any]:
    """Everything of the request that shapes the answer, except the model."""
    return {
        "v": KEY_VERSION,
        "messages": [m.model_dump(mode="json", exclude_none=True) for m in request.messages],
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "response_format": request.response_format,
        "stop": request.stop,
        "tools": request.tools,
        "tool_choice": request.tool_choice,
    }


def cache_keys(model: str, request: ChatRequest) -> CacheKeys:
    """The Redis keys of one request: the model is part of the fresh key only."""
    shape = _shape(request)
    return CacheKeys(
        fresh=keys.cache_fresh(_digest({**shape, "model": model})),
        stale=keys.cache_stale(_digest(shape)),
    )


def cacheable(response: ChatResponse) -> bool:
    """A complete, non-empty answer that came from a model (not itself from the cache)."""
    if response.cached or response.finish_reason in UNCACHEABLE_FINISH:
        return False
    return bool(response.text.strip() or response.tool_calls)


# --- per-task opt-out -----------------------------------------------------------------------

_bypass: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "parjanya_cache_bypass", default=False
)


@contextlib.contextmanager
def bypass_cache(bypass: bool = True) -> Iterator[None]:
    """Within the block (and tasks started from it), calls neither read nor write the cache."""
    token = _bypass.set(bypass)
    try:
        yield
    finally:
        _bypass.reset(token)


def cache_bypassed() -> bool:
    return _bypass.get()


# --- the middleware -------------------------------------------------------------------------


class CacheMiddleware:
    """Answers repeated requests from the store; stores the good answers it lets through."""

    def __init__(self, store: CacheStore, config: CacheConfig) -> None:
        self.store = store
        self.config = config

    def enabled_for(self, request: ChatRequest) -> bool:
        """Whether this request may use the cache: on in config and not bypassed by its task."""
        return self.config.enabled and not _bypass.get()

    async def __call__(
        self, deployment: Deployment, request: ChatRequest, call_next: Next
    ) -> ChatResponse:
        if not self.enabled_for(request):
            return await call_next(deployment, request)
        where = cache_keys(deployment.model, request)
        hit = await self._load(where.fresh)
        if hit is not None:
            metrics.CACHE_HITS.labels("fresh").inc()
            return hit
        response = await call_next(deployment, request)
        if cacheable(response):
            await self._save(where, response)
        return response

    async def stale_lookup(self, request: ChatRequest) -> ChatResponse | None:
        """The last good answer to this request from any model, for when every deployment failed."""
        if not self.enabled_for(request) or self.config.stale_ttl_s == 0:
            return None
        hit = await self._load(keys.cache_stale(_digest(_shape(request))))
        if hit is not None:
            metrics.CACHE_HITS.labels("stale").inc()
        return hit

    async def _load(self, key: str) -> ChatResponse | None:
        try:
            raw = await self.store.get(key)
        except Exception:  # a cache that is down is a miss, never a failed call
            log.warning("response cache: read failed", exc_info=True)
            return None
        if raw is None:
            return None
        try:
            return ChatResponse.model_validate_json(raw).model_copy(update={"cached": True})
        except ValidationError:  # written by another version of ChatResponse: ignore it
            log.warning("response cache: unreadable entry %s ignored", key)
            return None

    async def _save(self, where: CacheKeys, response: ChatResponse) -> None:
        body = response.model_dump_json()
        entries = [(where.fresh, body, self.config.ttl_s)]
        if self.config.stale_ttl_s > 0:
            entries.append((where.stale, body, self.config.stale_ttl_s))
        try:
            await self.store.put_many(entries)
        except Exception:
            log.warning("response cache: write failed", exc_info=True)
