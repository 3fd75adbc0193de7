"""The whole policy: one section per concern, each in its own module, checked together here."""

from __future__ import annotations

from pydantic import Field, model_validator

from parjanya.config.admission import AdmissionConfig
from parjanya.config.amqp import AmqpConfig
from parjanya.config.api import ApiConfig
from parjanya.config.base import Strict
from parjanya.config.governance import GovernanceConfig
from parjanya.config.metrics import MetricsConfig
from parjanya.config.resilience import (
    AuthDisableConfig,
    BreakerConfig,
    CacheConfig,
    ContextConfig,
    RateLimitConfig,
    RetryConfig,
)
from parjanya.config.routing import RoutingConfig
from parjanya.config.runtime import ConfidenceConfig, OutcomesConfig, ReliabilityConfig
from parjanya.config.tiers import Deployment, TierConfig, default_tiers
from parjanya.config.webhooks import WebhookConfig
from parjanya.limits import RequestLimits
from parjanya.queues import TIERS, Tier


class ParjanyaConfig(Strict):
    tiers: dict[Tier, TierConfig] = Field(default_factory=default_tiers)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    auth_disable: AuthDisableConfig = Field(default_factory=AuthDisableConfig)
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    confidence: ConfidenceConfig = Field(default_factory=ConfidenceConfig)
    context: ContextConfig = Field(default_factory=ContextConfig)
    outcomes: OutcomesConfig = Field(default_factory=OutcomesConfig)
    reliability: ReliabilityConfig = Field(default_factory=ReliabilityConfig)
    # Bounds on a submitted request (limits.py); they may be lowered here, never raised.
    limits: RequestLimits = Field(default_factory=RequestLimits)
    api: ApiConfig = Field(default_factory=ApiConfig)
    # SLA class weights, deadline estimates, load shedding (config/admission.py).
    admission: AdmissionConfig = Field(default_factory=AdmissionConfig)
    webhooks: WebhookConfig = Field(default_factory=WebhookConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    amqp: AmqpConfig = Field(default_factory=AmqpConfig)
    governance: GovernanceConfig = Field(default_factory=GovernanceConfig)

    @model_validator(mode="after")
    def _every_tier_present(self) -> ParjanyaConfig:
        missing = [t for t in TIERS if t not in self.tiers]
        if missing:
            raise ValueError(f"tiers {missing} have no deployments")
        return self

    @model_validator(mode="after")
    def _judge_is_configured(self) -> ParjanyaConfig:
        name = self.confidence.judge_deployment
        if self.confidence.checker == "judge" and name is None:
            raise ValueError("confidence.checker 'judge' needs confidence.judge_deployment")
        if name is not None:
            try:
                self.deployment(name)
            except KeyError:
                raise ValueError(
                    f"confidence.judge_deployment {name!r} is not a configured deployment"
                ) from None
        return self

    @model_validator(mode="after")
    def _shadow_judge_is_a_deployment(self) -> ParjanyaConfig:
        name = self.routing.shadow_judge
        if name is not None and name not in {
            d.name for t in self.tiers.values() for d in t.deployments
        }:
            raise ValueError(f"routing.shadow_judge {name!r} is not a configured deployment")
        return self

    @model_validator(mode="after")
    def _judges_keep_private_prompts_private(self) -> ParjanyaConfig:
        """Under `pii_action: private` a judge sees the prompt too, so it must be private."""
        if self.routing.pii_action != "private":
            return self
        judges = [self.routing.shadow_judge]
        if self.confidence.checker == "judge":
            judges.append(self.confidence.judge_deployment)
        public = [n for n in judges if n is not None and not self.deployment(n).private]
        if public:
            raise ValueError(
                f"routing.pii_action 'private' needs private judges; {public} are not private"
            )
        return self

    def deployment(self, name: str) -> Deployment:
        for tier in self.tiers.values():
            for deployment in tier.deployments:
                if deployment.name == name:
                    return deployment
        raise KeyError(name)
