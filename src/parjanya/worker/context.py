"""Per-process resources of a worker, built once after fork and passed to everything that runs hops.

The broker and the store are two handles, even when they are one Redis database: feeders pop the
broker's queue lists, and everything else reads and writes the store. With the store apart
(`PARJANYA_RESULT_URL` on another Redis or database), feeders popping through the store's client
saw empty lists while Celery's consumer of tier queues was cancelled, so tier hops stalled.
`worker/topology.py` refuses, at start, a combination a worker cannot serve.

The dispatch strategy and the fault-injection hook are decided here once, from config and
settings (`build_context`); nothing on the hop path reads the environment or compares the mode.
The context is built once per process and passed explicitly; Celery's entry points (task bodies,
signal handlers) reach it through their app (`worker/process.py`), never a module global.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import redis
import redis.asyncio as aioredis
from celery import Celery

from parjanya.aio import LoopThread
from parjanya.broker.poison import RawDeadLetters
from parjanya.checkers import build_checker
from parjanya.classify import Scorer, build_scorer
from parjanya.confidence import AsyncConfidenceChecker
from parjanya.config import Deployment, ParjanyaConfig, Settings
from parjanya.governance.budgets import SpendLedger
from parjanya.governance.consensus import Consensus
from parjanya.governance.deadlines import RECORD, LatencyBook
from parjanya.observe import HopObservers
from parjanya.observe.hop_log import HopLog
from parjanya.observe.tracing import Tracing, tracing_for
from parjanya.providers import Provider, build_provider
from parjanya.providers.transport import AiohttpPoster
from parjanya.queues import Tier
from parjanya.schema import TaskRequest
from parjanya.store import TaskStore
from parjanya.store.batch import ScriptBatcher
from parjanya.store.outbox import Outbox
from parjanya.worker.chain import TierChain, build_chain, shared_redis
from parjanya.worker.dispatch import Dispatcher
from parjanya.worker.learning import Learning
from parjanya.worker.lease import LeaseRenewer
from parjanya.worker.observe import HopMetrics
from parjanya.worker.strategy import DispatchStrategy, strategy_for

log = logging.getLogger("parjanya.worker")

#: Called with a hop's request right before it runs (fault injection in drills; None in production).
BeforeHop = Callable[[TaskRequest | None], None]


@dataclass
class WorkerContext:
    settings: Settings
    config: ParjanyaConfig
    app: Celery
    dispatch: DispatchStrategy
    before_hop: BeforeHop | None = None
    _providers: dict[str, Provider] = field(default_factory=dict)
    _chains: dict[Tier, TierChain] = field(default_factory=dict)
    _background: set[asyncio.Future[Any]] = field(default_factory=set)

    def in_background(self, work: Awaitable[object], what: str) -> None:
        """Run `work` on the event loop without waiting for it: best-effort bookkeeping that must
        not add a round trip to a hop's latency. Kept referenced until done; a failure is logged."""
        future = asyncio.ensure_future(work)
        self._background.add(future)

        def done(finished: asyncio.Future[Any]) -> None:
            self._background.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                log.warning("%s failed: %s", what, finished.exception())

        future.add_done_callback(done)

    @cached_property
    def broker(self) -> redis.Redis:
        """The broker's Redis: feeders pop its queue lists (never through the store's client)."""
        return redis.Redis.from_url(
            self.settings.broker_url,
            socket_timeout=30,
            socket_connect_timeout=5,
            health_check_interval=30,
        )

    @cached_property
    def store(self) -> TaskStore:
        return TaskStore.from_url(
            self.settings.store_url, idempotency_ttl_s=self.config.reliability.idempotency_ttl_s
        )

    @cached_property
    def dead_letters(self) -> RawDeadLetters:
        return RawDeadLetters(self.store, self.config.reliability.dead_letter_raw_bytes)

    @cached_property
    def outbox(self) -> Outbox:
        return Outbox(self.app, self.settings.store_url)

    @cached_property
    def leases(self) -> LeaseRenewer:
        """Renews through a client of its own that gives up within a third of the lease, so a
        hung round trip leaves time to retry before the lease lapses (`worker/lease.py`)."""
        ttl = self.config.reliability.lease_ttl_s
        renewals = TaskStore.from_url(self.settings.store_url, socket_timeout=max(0.5, ttl / 3))
        return LeaseRenewer(renewals.heartbeat_many, ttl)

    @cached_property
    def loop(self) -> LoopThread:
        """The event loop of this process's model calls, started on first use. The context is
        built once per process (`worker/process.py`), so a forked child gets a loop of its own."""
        return LoopThread()

    @cached_property
    def dispatcher(self) -> Dispatcher:
        inflight = self.settings.max_inflight or self.config.reliability.max_inflight
        return Dispatcher(self.loop, inflight)

    @cached_property
    def http(self) -> AiohttpPoster:
        """The connection pool every provider of this process shares (providers/transport.py)."""
        return AiohttpPoster()

    @cached_property
    def finishes(self) -> ScriptBatcher:
        """Finished hops' store writes, batched on the event loop (tasks/tier.py)."""
        return ScriptBatcher(self.aredis, self.store.transition_script)

    @cached_property
    def latency(self) -> LatencyBook:
        """Tier hop times and queue waits, kept in Redis for deadline routing."""
        return LatencyBook(self.config.admission)

    @cached_property
    def latency_records(self) -> ScriptBatcher:
        """Each tier hop's run time and wait, batched on the event loop (tasks/tier.py)."""
        return ScriptBatcher(self.aredis, self.store.redis.register_script(RECORD))

    @cached_property
    def learning(self) -> Learning:
        """Outcome records and shadow runs of answered tasks (worker/learning.py)."""
        return Learning(self.store, self.outbox, self.aredis, self.config, self.http)

    @cached_property
    def hop_metrics(self) -> HopMetrics:
        """Tokens and cost per tenant, within this process's tenant bound (worker/observe.py)."""
        return HopMetrics(self.config.metrics)

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

    @cached_property
    def hops(self) -> HopObservers:
        """Who is told of each hop (`worker/observed.py`): the hop log always; Flower's task
        events when the worker sends them (`tasks/lifecycle.py`); tracing when it is on."""
        return HopObservers([HopLog(), *self.tracing.observers()])

    @cached_property
    def tracing(self) -> Tracing:
        """Spans per hop and the trace context for the next hop's message (`PARJANYA_OTEL`)."""
        return tracing_for(self.settings)

    @cached_property
    def spend(self) -> SpendLedger:
        """Tenant standings, read by the classifier (governance/budgets.py)."""
        return SpendLedger(self.config.governance.budgets, sync=self.store.redis)

    @cached_property
    def consensus(self) -> Consensus:
        return Consensus(self.config.governance.consensus)

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


def build_context(settings: Settings, config: ParjanyaConfig, app: Celery) -> WorkerContext:
    """Decide what a worker decides once: its dispatch strategy and its hooks."""
    before_hop: BeforeHop | None = None
    if settings.chaos_kill_on:
        from parjanya.worker.chaos import KillOn  # drills only; never imported in production

        before_hop = KillOn(settings.chaos_kill_on)
    return WorkerContext(
        settings, config, app, dispatch=strategy_for(config.reliability), before_hop=before_hop
    )
