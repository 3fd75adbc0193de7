"""Spend: what each paid call cost, charged to its tenant at once; per-task and per-tenant caps.

**Charging.** `SpendMiddleware` sits in the tier call chain right after the cache, so it sees every
paid try (retries, fallbacks, escalations, shadow runs and consensus answers all pass through it)
and nothing the cache answered. After a call it prices the usage with `Deployment.cost_usd`, the
same function the task's `Attempt` uses, and adds it, in one MULTI/EXEC, to the tenant's day
and month counters and to the day's cost ledger (by tenant, tier and model, with the tokens, the
call count and what the same tokens would have cost on the top tier's first deployment). One
MULTI/EXEC of INCRBYFLOAT/HINCRBYFLOAT, so the counters and the ledger never disagree. A charge that cannot be written is logged;
the answer is not thrown away for it.

**Per task.** `budget_usd` is a hard cap on everything a task spends. The task's `Purse` (a context
variable set for the tier call, as the cache's opt-out is) holds what it has spent; before each
call the middleware refuses (`BudgetExhausted`, no HTTP call) when spent plus the call's estimate
(input tokens and `routing.expected_output_tokens`) would pass the cap, and `stop_escalation`
turns an escalation that could not be paid for into the end of the task.

**Per tenant.** `governance.budgets` gives each tenant a daily and a monthly budget. Past
`cap_share` of either, the classifier caps the tenant's tiers at `capped_max_tier`
(`tenant_cap`, one more policy rule); at the budget, new tasks are refused at submit
(`TenantOverBudget`). Tasks already accepted finish: a budget is checked at the door.

The ledger's sums are what `parjanya costs` reports. They equal the sums of the task results,
except for calls made by a worker that died before it could record them (real spend that no
result shows; the ledger keeps it).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import redis
import redis.asyncio as aioredis

from parjanya.classify.policy import Draft, Rule
from parjanya.config import BudgetsConfig, Deployment, TenantBudget
from parjanya.governance.charges import (
    METRICS,
    SEP,
    Charge,
    ChargeBatcher,
    day_key,
    ledger_key,
    month_key,
)
from parjanya.providers.base import ChatRequest, ChatResponse, Refused
from parjanya.queues import TIERS, Tier, tier_rank
from parjanya.resilience.base import Next, estimate_tokens

__all__ = [  # the key helpers and Charge stay importable from here (governance/charges.py)
    "ANONYMOUS",
    "METRICS",
    "BudgetExhausted",
    "Charge",
    "Purse",
    "SpendLedger",
    "SpendMiddleware",
    "Standing",
    "TenantOverBudget",
    "current_purse",
    "day_key",
    "ledger_key",
    "month_key",
    "paying",
    "tenant_cap",
]

log = logging.getLogger(__name__)

#: The tenant a task without one is charged to.
ANONYMOUS = "-"


def tenant_name(tenant: str | None) -> str:
    return tenant if tenant else ANONYMOUS


def today() -> date:
    return datetime.now(UTC).date()


class BudgetExhausted(Refused):
    """The task's `budget_usd` does not cover this call: nothing was sent."""

    error_type = "budget_exhausted"


class TenantOverBudget(Exception):
    """The tenant has spent its daily or monthly budget; `retry_after_s` is when it resets."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class Purse:
    """One task's spending as its tier call runs: who pays, the cap, and what is spent so far."""

    tenant: str
    budget_usd: float | None = None
    spent: float = 0.0
    shadow: bool = False
    refused: list[str] = field(default_factory=list)  # the BudgetExhausted messages, in order
    # Charges on their way to Redis: the call returns without waiting for them (a round trip
    # that was a tenth of a task's latency), and the hop waits for them before it commits.
    charging: list[asyncio.Future[None]] = field(default_factory=list)

    def covers(self, estimate: float) -> bool:
        return self.budget_usd is None or self.spent + estimate <= self.budget_usd + 1e-12

    async def settled(self) -> None:
        """Wait until every charge of this purse is in Redis (or has failed and been logged), so
        a caller who sees the task's result also sees what it cost in `parjanya costs`."""
        while self.charging:
            pending, self.charging = self.charging, []
            await asyncio.gather(*pending, return_exceptions=True)


_purse: contextvars.ContextVar[Purse | None] = contextvars.ContextVar(
    "parjanya_task_purse", default=None
)


@contextlib.contextmanager
def paying(purse: Purse | None) -> Iterator[None]:
    """Within the block, calls are charged to (and capped by) `purse`."""
    token = _purse.set(purse)
    try:
        yield
    finally:
        _purse.reset(token)


def current_purse() -> Purse | None:
    return _purse.get()


def estimate_call(deployment: Deployment, request: ChatRequest, expected_output: int) -> float:
    """A call's cost before it is made: its input, and the output it is expected to use."""
    tokens_in = estimate_tokens(request) - request.max_tokens
    return deployment.cost_usd(tokens_in, min(request.max_tokens, expected_output))


class SpendLedger:
    """The tenant counters and the per-day cost ledger in Redis (sync reads, async charges)."""

    def __init__(
        self,
        config: BudgetsConfig,
        sync: redis.Redis | None = None,
        aio: aioredis.Redis | None = None,
    ) -> None:
        self.config = config
        self.sync = sync
        self.aio = aio
        self._charges = None if aio is None else ChargeBatcher(aio, config.ledger_days)

    async def charge(self, charge: Charge, day: date | None = None) -> None:
        """Charge `charge` to its tenant's counters and the day's ledger (`charges.py`: charges
        of one turn of the event loop go as one transaction)."""
        assert self._charges is not None, "charging needs the async client"
        await self._charges.charge(charge, day or today())

    def standing(self, tenant: str | None, day: date | None = None) -> Standing:
        """Spend today and this month; not read at all for a tenant without a budget."""
        unread = self._unread(tenant, day)
        if not unread.budgeted:
            return unread
        assert self.sync is not None, "reading standings needs the sync client"
        return unread.read(self.sync.mget(unread.keys()))

    async def astanding(self, tenant: str | None, day: date | None = None) -> Standing:
        """`standing` on the event loop (the API's door), with the async client."""
        unread = self._unread(tenant, day)
        if not unread.budgeted:
            return unread
        assert self.aio is not None, "reading standings on the loop needs the async client"
        return unread.read(await self.aio.mget(unread.keys()))

    def _unread(self, tenant: str | None, day: date | None) -> Standing:
        """The tenant's budget with nothing spent: what a tenant without a budget stands at."""
        name, on = tenant_name(tenant), day or today()
        budget = self.config.for_tenant(tenant)
        return Standing(tenant=name, budget=budget, daily=0.0, monthly=0.0, day=on)

    def rows(self, since: date, until: date | None = None) -> list[dict[str, Any]]:
        """Ledger rows (tenant, tier, model and the metrics) of each day from `since` on."""
        assert self.sync is not None
        last = until or today()
        totals: dict[tuple[str, str, str], dict[str, float]] = {}
        day = since
        while day <= last:
            for raw_field, raw_value in self.sync.hgetall(ledger_key(day)).items():
                text = raw_field.decode() if isinstance(raw_field, bytes) else str(raw_field)
                tenant, tier, model, metric = text.split(SEP)
                row = totals.setdefault((tenant, tier, model), dict.fromkeys(METRICS, 0.0))
                row[metric] += float(raw_value)
            day += timedelta(days=1)
        return [
            {"tenant": t, "tier": tier, "model": m, **metrics}
            for (t, tier, m), metrics in sorted(totals.items())
        ]


@dataclass(frozen=True)
class Standing:
    """A tenant's spend today and this month against its budget."""

    tenant: str
    budget: TenantBudget
    daily: float
    monthly: float
    day: date

    @property
    def budgeted(self) -> bool:
        """Whether the tenant has a budget at all (else its spend is never read)."""
        return self.budget.daily_usd is not None or self.budget.monthly_usd is not None

    @property
    def share(self) -> float:
        """The larger of the shares of the daily and the monthly budget spent (0: no budget)."""
        shares = [
            spent / limit
            for spent, limit in (
                (self.daily, self.budget.daily_usd),
                (self.monthly, self.budget.monthly_usd),
            )
            if limit is not None
        ]
        return max(shares, default=0.0)

    def keys(self) -> list[str]:
        """The tenant's day and month counters, in the order `read` takes their values."""
        return [day_key(self.tenant, self.day), month_key(self.tenant, self.day)]

    def read(self, values: Sequence[Any]) -> Standing:
        """This standing with the counters' values (`keys` order; None: nothing spent yet)."""
        daily, monthly = values
        return replace(self, daily=float(daily or 0.0), monthly=float(monthly or 0.0))

    def refusal(self) -> TenantOverBudget | None:
        """The error for a submission when a budget is spent, else None. The reset date is worked
        out only for a spent budget: this runs on every submission."""
        for period, spent, limit in (
            ("monthly", self.monthly, self.budget.monthly_usd),
            ("daily", self.daily, self.budget.daily_usd),
        ):
            if limit is not None and spent >= limit:
                wait = max(1, int((self._resets(period) - datetime.now(UTC)).total_seconds()))
                return TenantOverBudget(
                    f"tenant {self.tenant!r} has spent ${spent:.6g} of its {period} budget "
                    f"${limit:.6g}; new tasks are refused until it resets in {wait} s",
                    retry_after_s=wait,
                )
        return None

    def _resets(self, period: str) -> datetime:
        """When `period`'s budget starts again: the next midnight, or the next month's first (UTC)."""
        day = self.day + timedelta(days=1)
        if period == "monthly":
            day = (self.day.replace(day=28) + timedelta(days=4)).replace(day=1)
        return datetime.combine(day, datetime.min.time(), UTC)


def tenant_cap(standing: Standing, config: BudgetsConfig) -> Rule:
    """A policy rule: past `cap_share` of a budget, route no higher than `capped_max_tier`
    (a floor set by the request or its SLA still wins, and says so)."""

    def tenant_budget(draft: Draft) -> None:
        share = standing.share
        cap = tier_rank(config.capped_max_tier)
        if share < config.cap_share or cap >= draft.ceiling:
            return
        ceiling = max(cap, draft.floor)
        draft.reasons.append(
            f"tenant {standing.tenant!r} has spent {share:.0%} of its budget (cap at "
            f"{config.cap_share:.0%}): at most {TIERS[ceiling]}"
        )
        draft.ceiling = ceiling
        if draft.tier > ceiling:
            draft.move_to(ceiling, "tenant budget")

    return tenant_budget


def with_tenant_cap(
    rules: Sequence[Rule], cap: Rule, after: str = "sla_policy"
) -> tuple[Rule, ...]:
    """`rules` with `cap` right after the rule named `after` (so window, budget and matching see
    the capped range), or last when there is no such rule."""
    names = [rule.__name__ for rule in rules]
    at = names.index(after) + 1 if after in names else len(rules)
    return (*rules[:at], cap, *rules[at:])


class SpendMiddleware:
    """Refuses a call the task's purse cannot cover; charges every paid answer to its tenant.

    The charge is filed, not awaited: the answer goes on while it travels, and whoever holds the
    purse waits for `Purse.settled()` before committing the task (`tasks/tier.py`).
    """

    def __init__(
        self, ledger: SpendLedger, tier: Tier, top: Deployment, expected_output_tokens: int
    ) -> None:
        self.ledger = ledger
        self.tier = tier  # the chain's tier: a consensus answer from a tier above is its own
        self.top = top
        self.expected_output_tokens = expected_output_tokens

    async def __call__(
        self, deployment: Deployment, request: ChatRequest, call_next: Next
    ) -> ChatResponse:
        purse = current_purse()
        if purse is None:
            return await call_next(deployment, request)
        estimate = estimate_call(deployment, request, self.expected_output_tokens)
        if not purse.covers(estimate):
            message = (
                f"budget_usd ${purse.budget_usd:.6g}: spent ${purse.spent:.6g}, and a call to "
                f"{deployment.name} would cost about ${estimate:.6g}"
            )
            purse.refused.append(message)
            raise BudgetExhausted(message, deployment=deployment.name)
        response = await call_next(deployment, request)
        if response.cached:
            return response
        usd = deployment.cost_usd(response.tokens_in, response.tokens_out)
        purse.spent += usd
        charge = Charge(
            tenant=purse.tenant,
            tier=self.tier,
            model=response.model or deployment.model,
            usd=usd,
            # a shadow run is overhead that sending everything to the top tier would not have
            top_usd=0.0
            if purse.shadow
            else self.top.cost_usd(response.tokens_in, response.tokens_out),
            tokens_in=response.tokens_in,
            tokens_out=response.tokens_out,
            shadow=purse.shadow,
        )
        purse.charging.append(asyncio.ensure_future(self._charge(charge)))
        return response

    async def _charge(self, charge: Charge) -> None:
        try:
            await self.ledger.charge(charge)
        except Exception:  # the answer is paid for either way; losing it would spend twice
            log.exception("could not charge $%.6g to tenant %s", charge.usd, charge.tenant)


def cheapest(deployments: Sequence[Deployment], request: ChatRequest, expected: int) -> float:
    return min((estimate_call(d, request, expected) for d in deployments), default=0.0)
