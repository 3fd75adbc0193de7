"""Per-process resources of a worker, built lazily after fork and reused by every task."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import cached_property

import httpx
import redis.asyncio as aioredis
from celery import Celery
from httpx_aiohttp import AiohttpTransport

from parjanya.aio import LoopThread, loop_thread
from parjanya.config import Deployment, ParjanyaConfig, Settings, get_config, get_settings
from parjanya.providers import Provider, build_provider
from parjanya.queues import Tier
from parjanya.store import TaskStore
from parjanya.tasks.chain import TierChain, build_chain, shared_redis
from parjanya.tasks.dispatch import Dispatcher, max_inflight_from_env
from parjanya.tasks.lease import LeaseRenewer
from parjanya.tasks.publish import Outbox


def _new_http_client() -> httpx.AsyncClient:
    """The httpx client every provider of this process shares, on an aiohttp transport.

    Adapters and tests speak httpx (MockTransport in unit tests); the sockets are aiohttp's.
    httpcore's pool does work per request in proportion to the connections it holds, so at 500
    calls in flight one client needed 6.8 s for 500 one-second calls; the aiohttp transport
    (httpx-aiohttp, by httpx's maintainer) needed 1.2 s (bench/inflight.py has the full run).
    The aiohttp session is created on first use, inside the worker's event loop.
    """
    limits = httpx.Limits(max_connections=4000, max_keepalive_connections=4000, keepalive_expiry=30)
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits), timeout=httpx.Timeout(60.0, connect=5.0)
    )


@dataclass
class WorkerContext:
    settings: Settings
    config: ParjanyaConfig
    app: Celery
    _providers: dict[str, Provider] = field(default_factory=dict)
    _chains: dict[Tier, TierChain] = field(default_factory=dict)

    @cached_property
    def store(self) -> TaskStore:
        return TaskStore.from_url(
            self.settings.store_url, idempotency_ttl_s=self.config.reliability.idempotency_ttl_s
        )

    @cached_property
    def outbox(self) -> Outbox:
        return Outbox(self.app, self.settings.store_url)

    @cached_property
    def leases(self) -> LeaseRenewer:
        return LeaseRenewer(self.store, self.config.reliability.lease_ttl_s)

    @property
    def loop(self) -> LoopThread:
        return loop_thread()

    @cached_property
    def dispatcher(self) -> Dispatcher:
        return Dispatcher(self.loop, max_inflight_from_env())

    @cached_property
    def http(self) -> httpx.AsyncClient:
        return _new_http_client()

    @cached_property
    def aredis(self) -> aioredis.Redis:
        """Async Redis for the resilience pieces; used only on this process's event loop."""
        return shared_redis(self.settings.store_url)

    def chain(self, tier: Tier) -> TierChain:
        chain = self._chains.get(tier)
        if chain is None:
            chain = self._chains[tier] = build_chain(self.config, tier, self.aredis)
        return chain

    def provider(self, deployment: Deployment) -> Provider:
        provider = self._providers.get(deployment.name)
        if provider is None:
            provider = self._providers[deployment.name] = build_provider(deployment, self.http)
        return provider


_lock = threading.Lock()
_contexts: dict[int, WorkerContext] = {}


def current_context() -> WorkerContext | None:
    """This process's context if one was built (shutdown hooks must not build one)."""
    with _lock:
        return _contexts.get(os.getpid())


def context() -> WorkerContext:
    from parjanya.app import app

    with _lock:
        ctx = _contexts.get(os.getpid())
        if ctx is None:
            ctx = _contexts[os.getpid()] = WorkerContext(get_settings(), get_config(), app)
        return ctx
