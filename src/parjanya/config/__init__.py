"""Settings: where things are (environment) and how routing behaves (YAML).

Two sources, two models. `Settings` comes from `PARJANYA_*` environment variables (pydantic-settings)
and says where the broker, the store and the config file are. `ParjanyaConfig` is the routing and
reliability policy loaded from `config/parjanya.yaml`; its pydantic defaults are the documented
defaults, and a test keeps the shipped YAML equal to them. Strings in the YAML may use
`${VAR:-default}` so one file serves a laptop, CI and a cluster.
"""

from parjanya.config.admission import AdmissionConfig, QueueLimits
from parjanya.config.amqp import AmqpConfig
from parjanya.config.api import ApiConfig
from parjanya.config.governance import (
    BudgetsConfig,
    ConsensusConfig,
    GovernanceConfig,
    MatchingConfig,
    MatchWeights,
    PrivacyConfig,
    TenantBudget,
)
from parjanya.config.loading import (
    default_config_path,
    expand_env,
    get_config,
    get_settings,
    load_config,
)
from parjanya.config.metrics import MetricsConfig, MetricsPool
from parjanya.config.model import ParjanyaConfig
from parjanya.config.resilience import (
    AuthDisableConfig,
    BreakerConfig,
    CacheConfig,
    ContextConfig,
    RateLimitConfig,
    RetryConfig,
)
from parjanya.config.routing import RoutingConfig, SlaPolicy, Thresholds, Weights
from parjanya.config.runtime import ConfidenceConfig, OutcomesConfig, ReliabilityConfig
from parjanya.config.settings import DEFAULT_BROKER_URL, DEFAULT_SIM_PORT, Settings
from parjanya.config.tiers import BalanceStrategy, Deployment, TierConfig
from parjanya.config.webhooks import WebhookConfig

__all__ = [
    "DEFAULT_BROKER_URL",
    "DEFAULT_SIM_PORT",
    "AdmissionConfig",
    "AmqpConfig",
    "ApiConfig",
    "AuthDisableConfig",
    "BalanceStrategy",
    "BreakerConfig",
    "BudgetsConfig",
    "CacheConfig",
    "ConfidenceConfig",
    "ConsensusConfig",
    "ContextConfig",
    "Deployment",
    "GovernanceConfig",
    "MatchWeights",
    "MatchingConfig",
    "MetricsConfig",
    "MetricsPool",
    "OutcomesConfig",
    "ParjanyaConfig",
    "PrivacyConfig",
    "QueueLimits",
    "RateLimitConfig",
    "ReliabilityConfig",
    "RetryConfig",
    "RoutingConfig",
    "Settings",
    "SlaPolicy",
    "TenantBudget",
    "Thresholds",
    "TierConfig",
    "WebhookConfig",
    "Weights",
    "default_config_path",
    "expand_env",
    "get_config",
    "get_settings",
    "load_config",
]
