"""Small, independent pieces the tier task composes around a provider call.

Each module owns one concern (retry, fallback, and later breaker, rate limit, balance, cache); they
are put together in one visible list in the tier task, not here.
"""

from parjanya.resilience.fallback import OnAttempt, TierCall, call_tier
from parjanya.resilience.retry import (
    OnRetry,
    RetryDetails,
    RetryOn,
    backoff_delay,
    default_retry_on,
    is_testing,
    retry_call,
    set_testing,
)

__all__ = [
    "OnAttempt",
    "OnRetry",
    "RetryDetails",
    "RetryOn",
    "TierCall",
    "backoff_delay",
    "call_tier",
    "default_retry_on",
    "is_testing",
    "retry_call",
    "set_testing",
]
