"""The decision matrix: one row per error type, and what a tier call does for each row."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from parjanya.config import RetryConfig
from parjanya.governance.budgets import BudgetExhausted
from parjanya.governance.scope import NoEligibleDeployment
from parjanya.providers.base import (
    AuthError,
    BadRequest,
    CircuitOpen,
    ConnectFailed,
    ContentFiltered,
    ContextTooLong,
    DeploymentDisabled,
    InternalError,
    LocalRateLimited,
    MalformedResponse,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    Refused,
    ServerError,
)
from parjanya.resilience.disabled import MemoryDisabledDeployments
from parjanya.resilience.matrix import MATRIX, Action, budget, error_type_of, rule_for
from parjanya.resilience.retry import RetryDetails, set_testing
from tests.unit.tier_fakes import Refuse, Scripted, dep, run


def _tree(cls: type[ProviderError]) -> list[type[ProviderError]]:
    return [cls, *(c for sub in cls.__subclasses__() for c in _tree(sub))]


#: Every error_type of the taxonomy in providers/base.py except the two abstract roots.
TAXONOMY = sorted(  # BudgetExhausted (imported above) is one: governance refuses a call too
    {c.error_type for c in _tree(ProviderError)} - {"provider_error", "refused"},
)


def test_every_error_type_of_the_taxonomy_has_exactly_one_row() -> None:
    assert sorted(MATRIX) == TAXONOMY
    assert all(key == rule.error_type for key, rule in MATRIX.items())


def test_the_table() -> None:
    assert {t: r.action for t, r in MATRIX.items()} == {
        "rate_limited": Action.WAIT_RETRY_AFTER,
        "timeout": Action.RETRY,
        "server_error": Action.RETRY,
        "malformed_response": Action.RETRY,
        "connect_failed": Action.RETRY,
        "context_too_long": Action.LARGER_WINDOW,
        "content_filtered": Action.OTHER_PROVIDER,
        "auth_error": Action.DISABLE,
        "bad_request": Action.NEXT,
        "internal": Action.NEXT,
        "circuit_open": Action.REFUSED,
        "rate_limited_local": Action.REFUSED,
        "deployment_disabled": Action.REFUSED,
        "budget_exhausted": Action.REFUSED,
        "no_eligible_deployment": Action.REFUSED,
    }


def test_rule_for_falls_back_by_class_then_to_internal() -> None:
    class NewGuard(Refused):
        error_type = "new_guard"

    assert rule_for(NewGuard("no", deployment="d")).action is Action.REFUSED
    assert rule_for(RuntimeError("bug")) is MATRIX["internal"]
    assert error_type_of(RuntimeError("bug")) == "internal"
    assert rule_for(ServerError("x", deployment="d")) is MATRIX["server_error"]


def test_budget_reads_the_config_only_for_retrying_actions() -> None:
    policy = RetryConfig(budgets={"timeout": 4, "auth_error": 9, "server_error": 0})
    assert budget(policy, "timeout") == 4
    assert budget(policy, "connect_failed") == 1  # missing: one try
    assert budget(policy, "server_error") == 1  # at least the one try
    assert budget(policy, "auth_error") == 1  # never retried, whatever the config says
    assert budget(policy, "unknown") == 1


# --- one behaviour test per row ------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    error: ProviderError
    primary_calls: int  # HTTP calls to the primary under the default RetryConfig
    refused: bool = False  # raised by a middleware (no call) instead of the adapter


ROWS: dict[str, Row] = {
    # 429 without Retry-After backs off within its budget (2 tries), then another deployment.
    "rate_limited": Row(RateLimited("429", deployment="primary"), 2),
    "timeout": Row(ProviderTimeout("slow", deployment="primary"), 2),  # one retry
    "server_error": Row(ServerError("503", deployment="primary", status=503), 1),  # at once
    "malformed_response": Row(MalformedResponse("<html>", deployment="primary"), 2),
    "connect_failed": Row(ConnectFailed("reset", deployment="primary"), 2),
    "context_too_long": Row(ContextTooLong("too long", deployment="primary"), 1),
    "content_filtered": Row(ContentFiltered("filtered", deployment="primary"), 1),
    "auth_error": Row(AuthError("401", deployment="primary"), 1),
    "bad_request": Row(BadRequest("422", deployment="primary"), 1),
    "internal": Row(InternalError("bug", deployment="primary"), 1),
    "circuit_open": Row(CircuitOpen("open", deployment="primary"), 0, refused=True),
    "rate_limited_local": Row(
        LocalRateLimited("no room", deployment="primary", wait_s=9.0), 0, refused=True
    ),
    "deployment_disabled": Row(DeploymentDisabled("off", deployment="primary"), 0, refused=True),
    # the spend middleware refuses a call the task's budget_usd cannot cover; a cheaper one may fit
    "budget_exhausted": Row(BudgetExhausted("over", deployment="primary"), 0, refused=True),
    "no_eligible_deployment": Row(
        NoEligibleDeployment("private only", deployment="primary"), 0, refused=True
    ),
}


def test_the_behaviour_rows_cover_the_table() -> None:
    assert sorted(ROWS) == sorted(MATRIX)


@pytest.mark.parametrize("error_type", sorted(ROWS))
def test_row(error_type: str) -> None:
    """Given a primary failing with this error, the matrix's budget is spent on it, then the
    secondary (a larger window, another host) answers."""
    row = ROWS[error_type]
    primary, secondary = dep("primary", window=4_000), dep("secondary", window=32_000)
    if row.refused:
        providers, middlewares = Scripted(), [Refuse(row.error, ["primary"])]
    else:
        providers, middlewares = Scripted({"primary": [row.error]}), []
    store, retries = MemoryDisabledDeployments(), list[RetryDetails]()

    with set_testing():
        result = run(
            [primary, secondary],
            providers,
            middlewares=middlewares,
            disabled=store,
            on_retry=retries.append,
        )

    assert result.deployment == secondary
    assert providers.calls == ({"primary": row.primary_calls} if row.primary_calls else {}) | {
        "secondary": 1
    }
    tries = [a for a in result.attempts if a.deployment == "primary"]
    assert [a.error_type for a in tries] == [error_type] * max(1, row.primary_calls)
    assert len(retries) == max(0, row.primary_calls - 1)
    disabled = MATRIX[error_type].action is Action.DISABLE
    assert (asyncio.run(store.reason("primary")) is not None) == disabled
    if row.refused:
        assert all(a.cost_usd == 0 for a in tries)


def test_row_rate_limited_honours_a_short_retry_after() -> None:
    limited = RateLimited("429", deployment="primary", retry_after=0.5)
    providers = Scripted({"primary": [limited]})
    retries: list[RetryDetails] = []
    with set_testing():
        run([dep("primary"), dep("secondary")], providers, on_retry=retries.append)
    assert providers.calls == {"primary": 2, "secondary": 1}
    assert len(retries) == 1 and 0.5 <= retries[0].delay_s <= 0.5 + RetryConfig().backoff_s
