"""The resilience chain's knobs: retries, breakers, auth disablement, rate limits, cache, context."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from parjanya.config.base import Strict


def _default_budgets() -> dict[str, int]:
    # Tries on ONE deployment per error type before falling back (seed 003's decision matrix):
    # 429 waits out Retry-After once then moves on; a timeout is retried once; 5xx falls back at
    # once; a malformed body is retried once; auth, bad request, filtered, too long never retry.
    return {
        "rate_limited": 2,
        "timeout": 2,
        "server_error": 1,
        "malformed_response": 2,
        "connect_failed": 2,
    }


class RetryConfig(Strict):
    """Retries of one deployment before falling back to the next one of the tier."""

    max_attempts: int = Field(default=2, ge=1, le=10)
    backoff_s: float = Field(default=0.2, ge=0)
    max_backoff_s: float = Field(default=5.0, ge=0)
    budgets: dict[str, int] = Field(default_factory=_default_budgets)
    max_retry_after_s: float = Field(default=5.0, ge=0)  # a longer Retry-After moves on instead


class BreakerConfig(Strict):
    """Per-deployment circuit breaker, shared by every worker through Redis."""

    failure_threshold: int = Field(default=5, ge=1)  # consecutive failures that open it
    failure_rate: float | None = Field(default=None, gt=0, le=1)  # or: this rate over the window
    window_s: float = Field(default=60.0, gt=0)
    min_calls: int = Field(default=20, ge=1)  # calls in the window before the rate counts
    reset_after_s: float = Field(default=30.0, gt=0)  # open -> half-open after this long
    # Each process answers a closed breaker from memory; changes are announced to every process at
    # once, and this bounds how stale a view can get if an announcement is lost.
    recheck_s: float = Field(default=1.0, ge=0)


class AuthDisableConfig(Strict):
    """How long a deployment stays out of service after a 401/403 (resilience/disabled.py)."""

    ttl_s: float = Field(default=600.0, gt=0)  # then it is tried again (a rotated key)
    # Each process re-reads the shared marks at most this often instead of before every call;
    # the process that sees the auth error skips the deployment at once.
    recheck_s: float = Field(default=1.0, ge=0)


class RateLimitConfig(Strict):
    """How the shared rpm/tpm limits of deployments are enforced (resilience/ratelimit.py)."""

    # Seconds of calls that may go at once after idle. 0: evenly spaced, so no 60 s window ever
    # holds more than `rpm` calls; a larger burst trades that for lower latency after idle.
    burst_s: float = Field(default=0.0, ge=0)
    max_wait_s: float = Field(
        default=5.0, ge=0
    )  # wait this long for a slot, else another deployment
    # Reserve against this much less than the configured rpm/tpm: calls reach the provider with
    # jitter, so its own per-minute count can exceed what was reserved by a call.
    headroom: float = Field(default=0.02, ge=0, lt=1)


class CacheConfig(Strict):
    """Exact-match response cache in Redis: a hit costs nothing and is marked in the result."""

    enabled: bool = True
    ttl_s: int = Field(default=3600, gt=0)
    stale_ttl_s: int = Field(default=86_400, ge=0)  # served only when every deployment failed


class ContextConfig(Strict):
    """What to do when a prompt fits no deployment of the tier (recorded in the result)."""

    truncation: Literal["drop_oldest", "none"] = "drop_oldest"
    reserve_output_tokens: bool = True
