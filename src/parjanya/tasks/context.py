"""Per-process resources of a worker, built lazily after fork and reused by every task."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import cached_property

import redis.asyncio as aioredis
from celery import Celery

from parjanya.aio import LoopThread, loop_thread
from parjanya.checkers import build_checker
from parjanya.classify import Scorer, build_scorer
from parjanya.confidence import AsyncConfidenceChecker
from parjanya.config import Deployment, ParjanyaConfig, Settings, get_config, get_settings
from parjanya.providers import Provider, build_provider
from parjanya.providers.transport import AiohttpPoster
from parjanya.queues import Tier
from parjanya.store import TaskStore
from parjanya.store.batch import ScriptBatcher
from parjanya.tasks.chain import TierChain, build_chain, shared_redis
from parjanya.tasks.dispatch import Dispatcher, max_inflight_from_env
from parjanya.tasks.learning import Learning
from parjanya.tasks.lease import LeaseRenewer
from parjanya.tasks.publish import Outbox


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
    def http(self) -> AiohttpPoster:
        """The connection pool every provider of this process shares (providers/transport.py)."""
        return AiohttpPoster()

    @cached_property
    def finishes(self) -> ScriptBatcher:
        """Finished hops' store writes, batched on the event loop (tasks/tier.py)."""
        return ScriptBatcher(self.aredis, self.store.transition_script)

    @cached_property
    def learning(self) -> Learning:
        """Outcome records and shadow runs of answered tasks (tasks/learning.py)."""
        return Learning(self.store, self.outbox, self.app, self.aredis, self.config, self.http)

    @cached_property
    def aredis(self) -> aioredis.Redis:
        """Async Redis for the resilience pieces; used only on this process's event loop."""
        return shared_redis(self.settings.store_url)

    @cached_property
    def scorer(self) -> Scorer:
        """Built once per process: a learned scorer reads its model file here, not per task."""
        return build_scorer(self.config.routing)

    @cached_property
    def checker(self) -> AsyncConfidenceChecker:
        """Scores answers (`confidence.checker`); a judge's calls share the `http` pool."""
        return build_checker(self.config, self.http)

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
