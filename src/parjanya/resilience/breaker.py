"""A circuit breaker per deployment, shared by every worker process and host through a store.

`BreakerMiddleware` asks the store and the pure state machine (`breaker_state`) before each call:
closed lets it through; open raises `CircuitOpen` (fallback moves to the next deployment at once);
half-open lets exactly one call through, the probe, and refuses the rest until it settles. After the
call it files the outcome, which may trip the breaker. It sits inside retry (`worker/chain.py` lists
it among the middlewares that `fallback.call_tier` runs once per try, inside `retry_call`), so one
outcome is one try: five "consecutive failures" are five failed tries, a call and its retry count
twice, and a breaker that a try opens refuses that call's retry (tests/unit/test_chain_order.py).

What counts (`classify_outcome`, replaceable):

- failure: `ServerError`, `ProviderTimeout`, `ConnectFailed`, `MalformedResponse`: the deployment
  is down, overloaded or broken;
- success: a response, and `BadRequest`, `ContextTooLong`, `ContentFiltered`: the deployment
  answered and judged the request, so it is healthy even though this request failed;
- ignored: `RateLimited` (429 says "slow down", not "unhealthy"; the rate limiter and Retry-After
  handle it), `AuthError` (disabled elsewhere), every `Refused` (no call was made), `InternalError`
  and any other exception (our bug, not the deployment's), cancellation. An ignored outcome neither
  counts nor resets the consecutive failures; a probe that ends ignored is released, so the next
  caller probes.

Every transition is emitted once, by the process whose write made it, as a `BreakerEvent` to the
listeners (`breaker_metrics.record_transition` counts and logs it); a failing listener is logged and
skipped. If the store cannot be reached the breaker fails open: calls go through, uncounted.

Cost per call while closed: two store primitives (read before, count after); a plain success is
filed in the background. In a worker the store is a `BreakerView`, which answers both from memory
while the breaker is closed and healthy, so that case makes no round trip at all. Transitions and
probe claims add one compare-and-set each, retried on a conflict after a fresh read.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from parjanya.config import BreakerConfig, Deployment
from parjanya.providers.base import (
    BadRequest,
    ChatRequest,
    ChatResponse,
    CircuitOpen,
    ConnectFailed,
    ContentFiltered,
    ContextTooLong,
    MalformedResponse,
    ProviderTimeout,
    ServerError,
)
from parjanya.resilience.base import CallIds, Next
from parjanya.resilience.breaker_state import (
    BreakerRecord,
    Change,
    Snapshot,
    State,
    admit,
    release_probe,
    settle_probe,
    trip,
    trip_reason,
)
from parjanya.resilience.breaker_store import BreakerStore

__all__ = [
    "PROBE_LEASE_MARGIN_S",
    "BreakerEvent",
    "BreakerListener",
    "BreakerMiddleware",
    "Outcome",
    "classify_outcome",
    "default_probe_lease_s",
    "force_close",
]

log = logging.getLogger(__name__)

PROBE_LEASE_MARGIN_S = 5.0
_MAX_CONFLICTS = 16  # compare-and-set retries before giving up on one decision


class Outcome(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    IGNORED = "ignored"


_FAILURES = (ServerError, ProviderTimeout, ConnectFailed, MalformedResponse)
_ANSWERED = (BadRequest, ContextTooLong, ContentFiltered)


def classify_outcome(error: BaseException | None) -> Outcome:
    """What one call says about the deployment's health (see the module docstring)."""
    if error is None or isinstance(error, _ANSWERED):
        return Outcome.SUCCESS
    if isinstance(error, _FAILURES):
        return Outcome.FAILURE
    return Outcome.IGNORED


@dataclass(frozen=True)
class BreakerEvent:
    """One state change of one deployment's breaker, as the cluster saw it (emitted once)."""

    deployment: str
    previous: State
    state: State
    at: float  # the store's clock, unix seconds
    reason: str
    failures: int  # consecutive failures when it happened


BreakerListener = Callable[[BreakerEvent], None]


def default_probe_lease_s(deployment: Deployment) -> float:
    """How long a probe may hold half-open: twice the deployment's timeout, and a margin.

    The probe is one try (the breaker sits inside retry), so its outcome is filed well within this;
    the lease only matters when the probe's process dies before filing it.
    """
    return 2 * deployment.timeout_s + PROBE_LEASE_MARGIN_S


@dataclass(frozen=True)
class _Ticket:
    version: int  # the record version the call was admitted under
    probe_id: str | None = None  # set when the call is the half-open probe


class BreakerMiddleware:
    """Refuse calls to a deployment whose shared breaker is open; file every call's outcome."""

    def __init__(
        self,
        store: BreakerStore,
        config: BreakerConfig,
        *,
        listeners: Sequence[BreakerListener] = (),
        classify: Callable[[BaseException | None], Outcome] = classify_outcome,
        probe_lease_s: float | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.listeners = list(listeners)
        self.classify = classify
        self.probe_lease_s = probe_lease_s
        self._window_s = config.window_s if config.failure_rate is not None else 0.0
        self._filing: set[asyncio.Future[None]] = set()  # successes being filed (kept alive)
        self._probe_ids = CallIds()

    async def __call__(
        self, deployment: Deployment, request: ChatRequest, call_next: Next
    ) -> ChatResponse:
        ticket = await self._admit(deployment)
        try:
            response = await call_next(deployment, request)
        except BaseException as error:
            await self._settle(deployment.name, ticket, self.classify(error))
            raise
        outcome = self.classify(None)
        if ticket is not None and self._settles_later(ticket, outcome):
            self._settle_later(deployment.name, ticket, outcome)
        else:
            await self._settle(deployment.name, ticket, outcome)
        return response

    def _settles_later(self, ticket: _Ticket, outcome: Outcome) -> bool:
        """A plain success under the consecutive-failures rule only resets the count.

        Failures and probes are filed before the call returns because they open and close the
        breaker, and so is every outcome under the failure-rate rule, where a success can complete
        `min_calls`. A success among concurrent calls has no order to keep with them anyway.
        """
        return outcome is Outcome.SUCCESS and ticket.probe_id is None and self._window_s == 0.0

    async def settled(self) -> None:
        """Wait until every outcome filed in the background is in the store."""
        while self._filing:
            await asyncio.gather(*self._filing, return_exceptions=True)

    def _settle_later(self, name: str, ticket: _Ticket, outcome: Outcome) -> None:
        filing = asyncio.ensure_future(self._settle(name, ticket, outcome))
        self._filing.add(filing)
        filing.add_done_callback(self._filing.discard)

    async def _admit(self, deployment: Deployment) -> _Ticket | None:
        """The ticket to file the outcome with; None when the store is down (fail open)."""
        try:
            return await self._decide(deployment)
        except CircuitOpen:
            raise
        except Exception:
            log.warning("breaker store unreachable; letting %s through", deployment.name)
            return None

    async def _decide(self, deployment: Deployment) -> _Ticket:
        lease_s = self.probe_lease_s or default_probe_lease_s(deployment)
        probe_id = self._probe_ids.new()
        for _ in range(_MAX_CONFLICTS):
            snap = await self.store.load(deployment.name, self._window_s)
            record = snap.record
            decision = admit(record, snap.now, self.config, probe_id=probe_id, lease_s=lease_s)
            if decision.verdict == "allow":
                return _Ticket(record.version)
            if decision.verdict == "refuse":
                raise CircuitOpen(
                    f"circuit {record.state} for {deployment.name}: "
                    f"ask again in {decision.retry_in_s:.1f}s",
                    deployment=deployment.name,
                )
            assert decision.write is not None
            if await self._swap(deployment.name, snap, decision.write, decision.change):
                return _Ticket(record.version + 1, probe_id)
        raise CircuitOpen(f"circuit of {deployment.name} is contended", deployment=deployment.name)

    async def _settle(self, name: str, ticket: _Ticket | None, outcome: Outcome) -> None:
        """File the outcome. Never raises: the call's own result or error is what matters."""
        if ticket is None:
            return
        try:
            if ticket.probe_id is not None:
                await self._settle_probe(name, ticket.probe_id, outcome)
            elif outcome is not Outcome.IGNORED:
                await self._count(name, ticket.version, outcome is Outcome.FAILURE)
        except Exception:
            log.warning("breaker store: could not file %s for %s", outcome.value, name)

    async def _count(self, name: str, version: int, failed: bool) -> None:
        snap = await self.store.count(name, version=version, failed=failed, window_s=self._window_s)
        for _ in range(_MAX_CONFLICTS):
            if snap is None:
                return  # admitted under an older state: the outcome no longer matters
            reason = trip_reason(snap.record, self.config)
            if reason is None:
                return
            change = Change("closed", "open", reason)
            if await self._swap(name, snap, trip(snap.record, snap.now), change):
                return
            snap = await self.store.load(name, self._window_s)

    async def _settle_probe(self, name: str, probe_id: str, outcome: Outcome) -> None:
        for _ in range(_MAX_CONFLICTS):
            snap = await self.store.load(name, self._window_s)
            settled: tuple[BreakerRecord, Change | None] | None
            if outcome is Outcome.IGNORED:
                released = release_probe(snap.record, probe_id=probe_id)
                settled = None if released is None else (released, None)
            else:
                healthy = outcome is Outcome.SUCCESS
                settled = settle_probe(snap.record, snap.now, probe_id=probe_id, healthy=healthy)
            if settled is None:
                return  # the lease ran out and someone else probes now, or it was reset
            if await self._swap(name, snap, *settled):
                return

    async def _swap(
        self, name: str, snap: Snapshot, record: BreakerRecord, change: Change | None
    ) -> bool:
        if not await self.store.swap(name, version=snap.record.version, record=record):
            return False
        if change is not None:
            self._emit(
                BreakerEvent(
                    deployment=name,
                    previous=change.previous,
                    state=change.state,
                    at=snap.now,
                    reason=change.reason,
                    failures=snap.record.failures,
                )
            )
        return True

    def _emit(self, event: BreakerEvent) -> None:
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                log.exception("breaker listener failed on %s", event)


async def force_close(store: BreakerStore, deployment: str) -> Snapshot:
    """Close `deployment`'s breaker now, whatever its state (for ops); returns what it was."""
    while True:
        snap = await store.load(deployment)
        closed = BreakerRecord(version=snap.record.version)
        if await store.swap(deployment, version=snap.record.version, record=closed):
            return snap
        await asyncio.sleep(0)
