"""Budgets: the spend middleware caps a task and charges its tenant; standings cap and refuse."""

from __future__ import annotations

import asyncio
from datetime import date

import fakeredis
import pytest
from fakeredis import FakeAsyncRedis

from parjanya.classify import RULES, PolicyRejection, classify
from parjanya.classify.scorer import HeuristicScorer
from parjanya.config import BudgetsConfig, ParjanyaConfig, RetryConfig, TenantBudget
from parjanya.escalation import Escalate, Finish, GiveUp
from parjanya.governance.budgets import (
    BudgetExhausted,
    Charge,
    Purse,
    SpendLedger,
    SpendMiddleware,
    Standing,
    TenantOverBudget,
    paying,
    tenant_cap,
    with_tenant_cap,
)
from parjanya.governance.scope import Stop, hop_scope
from parjanya.schema import Attempt, TaskRequest, TaskResult, TaskStatus, utcnow
from tests.unit.tier_fakes import REQUEST, Scripted, dep, run

DAY = date(2026, 12, 5)


def ledger_pair(config: BudgetsConfig | None = None) -> tuple[SpendLedger, SpendLedger]:
    """A sync reader and an async charger over one fake server."""
    server = fakeredis.FakeServer()
    cfg = config or BudgetsConfig()
    return (
        SpendLedger(cfg, sync=fakeredis.FakeRedis(server=server)),
        SpendLedger(cfg, aio=FakeAsyncRedis(server=server)),
    )


def test_every_paid_try_is_charged_to_the_tenant_and_the_ledger_adds_up() -> None:
    reader, charger = ledger_pair(BudgetsConfig(tenants={"acme": TenantBudget(daily_usd=1.0)}))
    top = dep("top")
    spend = SpendMiddleware(charger, "mid", top, expected_output_tokens=512)
    purse = Purse(tenant="acme")
    a, b = dep("a"), dep("b")
    providers = Scripted({"a": [BudgetExhausted("no", deployment="a")]})  # a fails, b answers
    with paying(purse):
        call = run([a, b], providers, middlewares=[spend])
    assert call.ok and call.deployment == b
    paid = sum(x.cost_usd for x in call.attempts)
    assert paid > 0 and purse.spent == pytest.approx(paid)
    rows = reader.rows(date.today())
    assert [(r["tenant"], r["tier"], r["model"]) for r in rows] == [("acme", "mid", "b-model")]
    assert rows[0]["usd"] == pytest.approx(paid)
    assert rows[0]["top_usd"] == pytest.approx(top.cost_usd(100, 50))
    assert rows[0]["calls"] == 1 and rows[0]["tokens_in"] == 100
    standing = reader.standing("acme")
    assert standing.daily == pytest.approx(paid) and standing.monthly == pytest.approx(paid)


def test_a_call_the_task_budget_cannot_cover_is_refused_without_a_call(no_sleep: None) -> None:
    _, charger = ledger_pair()
    spend = SpendMiddleware(charger, "high", dep("top"), expected_output_tokens=512)
    purse = Purse(tenant="t", budget_usd=0.001, spent=0.0)
    providers = Scripted()
    with paying(purse):
        call = run([dep("a")], providers, middlewares=[spend], retry=RetryConfig())
    # estimate: ~2 input tokens and min(16, 512) output tokens at $1/$4 per Mtok: covered
    assert call.ok
    purse.spent = 0.001
    with paying(purse):
        refused = run([dep("a")], providers, middlewares=[spend])
    assert not refused.ok and providers.calls["a"] == 1  # the second run made no call
    assert refused.errors[0].error_type == "budget_exhausted"
    assert purse.refused and "budget_usd" in purse.refused[0]


def test_without_a_purse_the_middleware_only_passes_through() -> None:
    _, charger = ledger_pair()
    spend = SpendMiddleware(charger, "high", dep("top"), expected_output_tokens=512)
    call = run([dep("a")], Scripted(), middlewares=[spend])
    assert call.ok


def test_a_shadow_charge_is_cost_but_not_baseline() -> None:
    reader, charger = ledger_pair()
    spend = SpendMiddleware(charger, "high", dep("top"), expected_output_tokens=512)
    with paying(Purse(tenant="t", shadow=True)):
        run([dep("a")], Scripted(), middlewares=[spend])
    (row,) = reader.rows(date.today())
    assert row["shadow_usd"] == pytest.approx(row["usd"]) and row["top_usd"] == 0.0


def test_ledger_rows_sum_over_days_and_skip_days_before_since() -> None:
    reader, charger = ledger_pair()
    charge = Charge("t", "low", "m", 0.25, 1.0, 10, 20, False)
    asyncio.run(charger.charge(charge, day=date(2026, 12, 3)))
    asyncio.run(charger.charge(charge, day=DAY))
    asyncio.run(charger.charge(charge, day=DAY))
    assert reader.rows(DAY, until=DAY)[0]["usd"] == pytest.approx(0.5)
    assert reader.rows(date(2026, 12, 1), until=DAY)[0]["usd"] == pytest.approx(0.75)
    assert reader.rows(date(2026, 12, 1), until=DAY)[0]["calls"] == 3


def test_standing_share_and_refusal() -> None:
    budget = TenantBudget(daily_usd=1.0, monthly_usd=10.0)
    fresh = Standing("t", budget, daily=0.5, monthly=2.0, day=DAY)
    assert fresh.share == pytest.approx(0.5) and fresh.refusal() is None
    spent = Standing("t", budget, daily=1.0, monthly=2.0, day=DAY)
    refusal = spent.refusal()
    assert isinstance(refusal, TenantOverBudget) and "daily budget" in str(refusal)
    assert refusal.retry_after_s >= 1
    monthly = Standing("t", budget, daily=0.1, monthly=10.0, day=DAY).refusal()
    assert monthly is not None and "monthly" in str(monthly)
    assert Standing("t", TenantBudget(), daily=9.0, monthly=9.0, day=DAY).share == 0.0


def test_a_tenant_without_a_budget_is_not_read() -> None:
    config = BudgetsConfig(tenants={"acme": TenantBudget(daily_usd=1.0)})
    ledger = SpendLedger(config, sync=None)  # no client: any read would fail
    free = ledger.standing("anyone")
    assert free.share == 0.0 and free.refusal() is None and free.tenant == "anyone"
    assert ledger.standing(None).tenant == "-"
    with pytest.raises(AssertionError):
        ledger.standing("acme")


def _request(**fields: object) -> TaskRequest:
    return TaskRequest.model_validate({"prompt": "Rename tmp to total in cart.py", **fields})


def test_past_the_cap_share_the_tenant_routes_no_higher_than_the_capped_tier() -> None:
    config = ParjanyaConfig()
    budgets = BudgetsConfig(cap_share=0.5, capped_max_tier="low")
    over = Standing("t", TenantBudget(daily_usd=1.0), daily=0.6, monthly=0.6, day=DAY)
    rules = with_tenant_cap(RULES, tenant_cap(over, budgets))
    assert [r.__name__ for r in rules].index("tenant_budget") == 2
    decision = classify(_request(min_tier="mid"), config, HeuristicScorer(), rules)
    assert decision.tier == "mid" and decision.max_tier == "mid"  # the request's floor wins
    decision = classify(_request(), config, HeuristicScorer(), rules)
    assert decision.max_tier == "low" and any("tenant" in r for r in decision.reasons)
    under = Standing("t", TenantBudget(daily_usd=1.0), daily=0.4, monthly=0.4, day=DAY)
    free = classify(
        _request(), config, HeuristicScorer(), with_tenant_cap(RULES, tenant_cap(under, budgets))
    )
    assert free.max_tier == "high"


def test_the_cap_makes_a_large_prompt_a_clear_rejection() -> None:
    budgets = BudgetsConfig(cap_share=0.1)
    over = Standing("t", TenantBudget(daily_usd=1.0), daily=0.9, monthly=0.9, day=DAY)
    with pytest.raises(PolicyRejection, match="at most low"):
        classify(
            _request(context_tokens=30_000),
            ParjanyaConfig(),
            HeuristicScorer(),
            with_tenant_cap(RULES, tenant_cap(over, budgets)),
        )


def _doc(spent: float) -> TaskResult:
    now = utcnow()
    attempt = Attempt(
        hop=1,
        stage="low",
        tier="low",
        outcome="low_confidence",
        cost_usd=spent,
        started_at=now,
        finished_at=now,
    )
    return TaskResult(id="t1", status=TaskStatus.running, attempts=[attempt])


def test_an_escalation_the_budget_cannot_pay_for_is_not_started() -> None:
    config = ParjanyaConfig()
    request = _request(budget_usd=0.003)
    scope = hop_scope(config, request, _doc(0.002), "low")
    assert scope.purse.spent == pytest.approx(0.002) and scope.purse.budget_usd == 0.003
    # mid's estimate for 16 output tokens is tiny: covered
    assert isinstance(
        scope.hold(Escalate("mid", "low_confidence"), _doc(0.0), REQUEST, config), Escalate
    )
    big = REQUEST.model_copy(update={"max_tokens": 1024})
    held = scope.hold(Escalate("mid", "low_confidence"), _doc(0.002), big, config)
    assert held == Finish(low_confidence=True)
    stopped = scope.hold(Escalate("mid", "failover"), _doc(0.002), big, config)
    assert isinstance(stopped, Stop) and "not started" in stopped.reason
    scope.purse.refused.append("budget_usd $0.003: refused")
    assert isinstance(scope.hold(GiveUp("all failed"), _doc(0.0), big, config), Stop)
    assert scope.hold(Finish(low_confidence=False), _doc(0.0), big, config) == Finish(False)


def test_without_a_budget_every_escalation_is_held_to_nothing() -> None:
    config = ParjanyaConfig()
    scope = hop_scope(config, _request(), _doc(5.0), "low")
    big = REQUEST.model_copy(update={"max_tokens": 100_000})
    assert isinstance(scope.hold(Escalate("high", "failover"), _doc(5.0), big, config), Escalate)


def test_charges_of_one_turn_go_as_one_transaction_of_their_sums() -> None:
    import asyncio

    reader, charger = ledger_pair(BudgetsConfig(tenants={"acme": TenantBudget(daily_usd=1.0)}))
    assert charger.aio is not None
    sent: list[int] = []
    real_pipeline = charger.aio.pipeline

    def counting_pipeline(*args: object, **kwargs: object) -> object:
        sent.append(1)
        return real_pipeline(*args, **kwargs)  # type: ignore[arg-type]

    charger.aio.pipeline = counting_pipeline  # type: ignore[method-assign,assignment]

    def charge(usd: float, model: str) -> Charge:
        return Charge("acme", "low", model, usd, 2 * usd, 10, 5, False)

    async def three_at_once() -> None:
        await asyncio.gather(
            *(charger.charge(charge(u, m)) for u, m in ((0.1, "a"), (0.2, "a"), (0.3, "b")))
        )

    asyncio.run(three_at_once())
    assert sent == [1]  # one MULTI/EXEC for the turn
    rows = {r["model"]: r for r in reader.rows(date.today())}
    assert rows["a"]["usd"] == pytest.approx(0.3) and rows["a"]["calls"] == 2
    assert rows["b"]["top_usd"] == pytest.approx(0.6) and rows["b"]["tokens_in"] == 10
    assert reader.standing("acme").daily == pytest.approx(0.6)
