"""Falling back along one tier's deployments: primary, then secondary, then the rest, in order.

Each deployment gets `retry_call` with the tier's `RetryConfig`; an error the predicate will not
retry (auth, bad request, context too long, filtered, internal) moves on to the next deployment at
once, since the next one may have another key, a larger window or another filter. Every HTTP try
becomes one `schema.Attempt`, success or not, so a task's history says exactly what was spent where.

What happens after the last deployment fails (escalate to the next tier, dead-letter) is decided by
the caller from the returned `TierCall`; nothing here raises a provider error or an unexpected one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from parjanya.config import Deployment, RetryConfig
from parjanya.providers.base import (
    ChatRequest,
    ChatResponse,
    InternalError,
    Provider,
    ProviderError,
)
from parjanya.queues import Tier
from parjanya.resilience.retry import OnRetry, RetryOn, default_retry_on, retry_call
from parjanya.schema import Attempt, utcnow

__all__ = ["OnAttempt", "TierCall", "call_tier"]

log = logging.getLogger(__name__)

OnAttempt = Callable[[Attempt], None]


@dataclass
class TierCall:
    """The outcome of one tier: the answer (if any), who gave it, and every try on the way."""

    response: ChatResponse | None = None
    deployment: Deployment | None = None
    attempts: list[Attempt] = field(default_factory=list)  # one per HTTP try, in order
    errors: list[ProviderError] = field(default_factory=list)  # one per failed try, in order

    @property
    def ok(self) -> bool:
        return self.response is not None

    @property
    def last_error(self) -> ProviderError | None:
        return self.errors[-1] if self.errors else None


@dataclass
class _Recorder:
    """Turns each try into an `Attempt` on the result and hands it to the hook."""

    result: TierCall
    hop: int
    tier: Tier
    on_attempt: OnAttempt | None

    def ok(self, deployment: Deployment, response: ChatResponse, started: datetime) -> None:
        self._add(
            deployment,
            started,
            outcome="ok",
            model=response.model,
            tokens_in=response.tokens_in,
            tokens_out=response.tokens_out,
            cost_usd=deployment.cost_usd(response.tokens_in, response.tokens_out),
        )

    def error(self, deployment: Deployment, error: ProviderError, started: datetime) -> None:
        self.result.errors.append(error)
        self._add(
            deployment,
            started,
            outcome="error",
            model=deployment.model,
            error_type=error.error_type,
            error=str(error),
        )

    def _add(self, deployment: Deployment, started: datetime, **fields: object) -> None:
        attempt = Attempt.model_validate(
            {
                "hop": self.hop,
                "stage": self.tier,
                "tier": self.tier,
                "deployment": deployment.name,
                "started_at": started,
                "finished_at": utcnow(),
                **fields,
            }
        )
        self.result.attempts.append(attempt)
        if self.on_attempt is None:
            return
        try:
            self.on_attempt(attempt)
        except Exception:  # a broken observer must not change the outcome of the call
            log.exception("on_attempt hook failed for deployment %s", deployment.name)


async def _one_try(
    provider: Provider, deployment: Deployment, request: ChatRequest, record: _Recorder
) -> ChatResponse:
    """One HTTP try, recorded. Only `ProviderError`s leave this function."""
    started = utcnow()
    try:
        response = await provider.chat(request)
    except ProviderError as error:
        record.error(deployment, error, started)
        raise
    except Exception as exc:
        wrapped = InternalError.wrap(exc, deployment=deployment.name)
        record.error(deployment, wrapped, started)
        raise wrapped from exc
    record.ok(deployment, response, started)
    return response


async def _try_deployment(
    deployment: Deployment,
    request: ChatRequest,
    *,
    providers: Callable[[Deployment], Provider],
    retry: RetryConfig,
    retry_on: RetryOn,
    on_retry: OnRetry | None,
    record: _Recorder,
) -> ChatResponse | None:
    """The answer of one deployment after its retries, or None with the failures recorded."""
    try:
        provider = providers(deployment)
    except Exception as exc:  # e.g. a provider kind with no adapter yet
        record.error(deployment, InternalError.wrap(exc, deployment=deployment.name), utcnow())
        return None
    try:
        return await retry_call(
            lambda: _one_try(provider, deployment, request, record),
            policy=retry,
            retry_on=retry_on,
            on_retry=on_retry,
        )
    except ProviderError:
        return None  # every try is already in the record
    except Exception as exc:  # a faulty retry_on or on_retry: record it, keep falling back
        record.result.errors.append(InternalError.wrap(exc, deployment=deployment.name))
        return None


async def call_tier(
    deployments: Sequence[Deployment],
    request: ChatRequest,
    *,
    providers: Callable[[Deployment], Provider],
    retry: RetryConfig,
    hop: int,
    tier: Tier,
    on_attempt: OnAttempt | None = None,
    retry_on: RetryOn = default_retry_on,
    on_retry: OnRetry | None = None,
) -> TierCall:
    """Ask each deployment in order until one answers; never raises for a failed call."""
    result = TierCall()
    record = _Recorder(result=result, hop=hop, tier=tier, on_attempt=on_attempt)
    for deployment in deployments:
        response = await _try_deployment(
            deployment,
            request,
            providers=providers,
            retry=retry,
            retry_on=retry_on,
            on_retry=on_retry,
            record=record,
        )
        if response is not None:
            result.response, result.deployment = response, deployment
            break
    return result
