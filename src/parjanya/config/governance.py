"""Governance policy: tenant budgets, prompt privacy, capability matching weights, consensus."""

from __future__ import annotations

from pydantic import Field, model_validator

from parjanya.config.base import Strict
from parjanya.queues import Tier


class TenantBudget(Strict):
    """USD a tenant may spend per UTC day and per UTC month (null: no limit)."""

    daily_usd: float | None = Field(default=None, gt=0)
    monthly_usd: float | None = Field(default=None, gt=0)


class BudgetsConfig(Strict):
    # Budgets by tenant name; `default` applies to every other tenant (and to anonymous tasks).
    tenants: dict[str, TenantBudget] = Field(default_factory=dict)
    default: TenantBudget = Field(default_factory=TenantBudget)
    # Past this share of a daily or monthly budget a tenant's new tasks route at most to
    # `capped_max_tier`; at the whole budget they are refused at submit.
    cap_share: float = Field(default=0.8, gt=0, le=1)
    capped_max_tier: Tier = "low"
    # Days the per-day cost ledger (`parjanya costs`) is kept.
    ledger_days: int = Field(default=400, ge=1)

    def for_tenant(self, tenant: str | None) -> TenantBudget:
        if tenant is not None and tenant in self.tenants:
            return self.tenants[tenant]
        return self.default


class PrivacyConfig(Strict):
    # Prompt text in worker logs and dead-letter listings. Off: they carry ids, sizes and hashes.
    log_prompts: bool = False


class MatchWeights(Strict):
    """How `balance: scored` weighs what remains after the hard constraints (they need not sum to 1)."""

    cost: float = Field(default=0.4, ge=0)
    latency: float = Field(default=0.3, ge=0)
    quality: float = Field(default=0.3, ge=0)

    @model_validator(mode="after")
    def _some_weight(self) -> MatchWeights:
        if self.cost + self.latency + self.quality <= 0:
            raise ValueError("matching weights must not all be 0")
        return self


class MatchingConfig(Strict):
    weights: MatchWeights = Field(default_factory=MatchWeights)
    # A deployment with no `latency_s` hint and no measurement is taken to answer in this long.
    default_latency_s: float = Field(default=5.0, gt=0)


class ConsensusConfig(Strict):
    """High stakes: ask several deployments and compare (seed 003's consensus pattern)."""

    enabled: bool = False
    min_risk: float = Field(default=7.0, ge=0, le=10)  # the risk dimension (0-10) that triggers it
    answers: int = Field(
        default=2, ge=2, le=5
    )  # deployments asked in parallel (tier first, then up)
    # Share of the other answers that must agree with the first; below it the confidence is
    # capped at the agreement share, so the task escalates or is flagged low_confidence.
    min_agreement: float = Field(default=1.0, gt=0, le=1)


class GovernanceConfig(Strict):
    budgets: BudgetsConfig = Field(default_factory=BudgetsConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    matching: MatchingConfig = Field(default_factory=MatchingConfig)
    consensus: ConsensusConfig = Field(default_factory=ConsensusConfig)
