"""Governance over real workers and the sim: budgets cap then refuse, costs add up, a task budget
stops escalation, PII stays on the private deployment, and an unservable task is refused at submit.

One cluster for the module, configured with `pii_action: private`, a private `sim-local`
deployment in mid, a small daily budget for one tenant (named per run, since the test Redis may
be shared and its counters are per tenant and day), and the low tier priced like mid so one low
call is a sizeable share of a small task budget.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from parjanya.client import Client, TenantOverBudget
from parjanya.schema import TaskResult
from parjanya.sim import SimServer
from parjanya.sim.ledger import prompt_key

from .conftest import Cluster, add_private_deployment, make_cluster

pytestmark = pytest.mark.integration

TENANT = f"acme-{uuid.uuid4().hex[:8]}"
DAILY_USD = 0.002


def _governed(raw: dict[str, Any]) -> None:
    add_private_deployment(raw, "mid")
    raw["routing"]["pii_action"] = "private"
    low = raw["tiers"]["low"]["deployments"][0]
    low["price_in_per_mtok"], low["price_out_per_mtok"] = 1.0, 4.0
    budgets = raw["governance"]["budgets"]
    budgets["tenants"] = {TENANT: {"daily_usd": DAILY_USD, "monthly_usd": None}}
    budgets["cap_share"] = 0.25
    budgets["capped_max_tier"] = "low"


@pytest.fixture(scope="module")
def governed(
    redis_url: str, sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    running = make_cluster(redis_url, sim, tmp_path_factory.mktemp("governed"), mutate=_governed)
    with running.serving("intake", "low", "mid", "high"):
        yield running


@pytest.fixture
def producer(redis_url: str, governed: Cluster) -> Iterator[Client]:
    with Client(redis_url, config=governed.config) as client:
        yield client


def _unique(text: str) -> str:
    return f"{text} (ref {uuid.uuid4().hex[:10]})"


def _costs(cluster: Cluster, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "parjanya", "costs", "--json", *args],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _paid_by_tier(results: list[TaskResult]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for result in results:
        for attempt in result.attempts:
            if attempt.tier is not None and attempt.cost_usd:
                totals[attempt.tier] = totals.get(attempt.tier, 0.0) + attempt.cost_usd
    return totals


def test_a_tenant_over_budget_is_capped_then_refused_and_costs_add_up(
    producer: Client, governed: Cluster
) -> None:
    results: list[TaskResult] = []
    first = producer.submit(
        {"prompt": _unique("Summarise the release notes."), "tenant": TENANT, "min_tier": "high"}
    ).result(timeout=60)
    assert first.status == "succeeded" and first.tier_path == ["high"]
    assert DAILY_USD * 0.25 <= first.cost_usd < DAILY_USD  # past the cap share, under the budget
    results.append(first)

    capped = producer.submit(
        {"prompt": _unique("Rename tmp to total in cart.py."), "tenant": TENANT}
    ).result(timeout=60)
    assert capped.status == "succeeded" and capped.routing is not None
    assert capped.routing.max_tier == "low" and capped.tier_path == ["low"]
    assert any(TENANT in reason for reason in capped.routing.reasons)
    results.append(capped)

    refused: TenantOverBudget | None = None
    for _ in range(6):  # each high task spends about a third of the budget
        try:
            handle = producer.submit(
                {
                    "prompt": _unique("Summarise the design doc."),
                    "tenant": TENANT,
                    "min_tier": "high",
                }
            )
        except TenantOverBudget as exc:
            refused = exc
            break
        results.append(handle.result(timeout=60))
    assert refused is not None and "daily budget" in str(refused) and refused.retry_after_s > 0
    spent = sum(r.cost_usd for r in results)
    assert spent >= DAILY_USD

    report = _costs(governed, "--tenant", TENANT, "--since", "1d")
    total = report["tenants"][TENANT]
    assert total["usd"] == pytest.approx(spent, abs=1e-9)
    assert total["calls"] == sum(
        1 for r in results for a in r.attempts if a.outcome in ("ok", "low_confidence")
    )
    by_tier: dict[str, float] = {}
    for row in report["rows"]:
        by_tier[row["tier"]] = by_tier.get(row["tier"], 0.0) + row["usd"]
    assert by_tier == pytest.approx(_paid_by_tier(results), abs=1e-9)
    top = governed.config.tiers["high"].deployments[0]
    baseline = sum(top.cost_usd(r.tokens_in, r.tokens_out) for r in results)
    assert total["all_top_tier_usd"] == pytest.approx(baseline, abs=1e-9)
    assert total["saving_usd"] == pytest.approx(baseline - spent, abs=1e-9)


def test_a_task_budget_stops_its_escalation(producer: Client, sim: SimServer) -> None:
    hard = "Rename tmp to total in cart.py. [[sim:difficulty=0.9]]"
    control = producer.submit({"prompt": _unique(hard), "max_output_tokens": 80}).result(timeout=60)
    assert control.tier_path == ["low", "mid"]  # without a budget the doubtful answer escalates

    prompt = _unique(hard)
    held = producer.submit(
        {"prompt": prompt, "max_output_tokens": 80, "budget_usd": 0.0005}
    ).result(timeout=60)
    assert held.routing is not None and held.routing.max_tier == "mid"  # one mid call fits...
    assert held.status == "succeeded" and held.tier_path == ["low"]  # ...but not after low's
    assert held.low_confidence and held.cost_usd <= 0.0005
    assert any("not started" in reason for reason in held.routing.reasons)
    models = {c.model for c in sim.provider.ledger.calls(prompt_key(prompt))}
    assert models == {"sim-small"}


def test_pii_reaches_only_the_private_deployment(
    producer: Client, sim: SimServer, governed: Cluster
) -> None:
    email = f"ana.{uuid.uuid4().hex[:8]}@example.com"
    prompt = (
        f"Rename tmp to total in cart.py and mail the diff to {email}, card 4111 1111 1111 1111."
    )
    result = producer.submit(prompt).result(timeout=60)
    assert result.status == "succeeded" and result.deployment == "sim-local"
    assert result.complexity is not None and {"card", "email"} <= set(result.complexity.pii)
    calls = sim.provider.ledger.calls(prompt_key(prompt))
    assert calls and {c.model for c in calls} == {"sim-local"}

    clean = producer.submit(_unique("Rename tmp to total in cart.py.")).result(timeout=60)
    assert clean.deployment != "sim-local"  # the filter only holds tasks with PII

    nowhere = producer.submit({"prompt": prompt, "max_tier": "low"}).result(timeout=60)
    assert nowhere.status == "failed" and nowhere.error is not None
    assert "not private" in nowhere.error.message
    assert sim.provider.ledger.count(prompt_key(prompt)) == len(calls)  # nothing more was sent

    for log in Path(governed.log_dir).glob("*.log"):
        assert email not in log.read_text(errors="replace"), log.name


def test_a_constraint_nothing_meets_is_refused_at_submit(producer: Client) -> None:
    before = producer.store.redis.dbsize()
    for constraints in ({"capabilities": ["vision"]}, {"residency": "eu"}, {"max_latency_s": 1}):
        with pytest.raises(ValidationError) as raised:
            producer.submit({"prompt": "Describe this picture.", "constraints": constraints})
        assert raised.value.errors()[0]["loc"] == ("constraints",)
        assert "no deployment can serve this task" in str(raised.value)
    assert producer.store.redis.dbsize() == before  # nothing was written
