"""One tier's fallback chain: its deployments in order, then the stale cache, then an honest failure.

Seed 003's hierarchy, for one tier: primary → secondary → tertiary (or the balancer's order) →
cached response → graceful degradation (the caller escalates to the next tier or dead-letters,
deciding from the returned `TierCall`; nothing here raises). What each failure means is one row
of `matrix.MATRIX`; this module only follows it:

    for deployment in balancer.order(deployments) or the configured order:
        skip, recorded, no call: its provider+host filtered this request · its window is too
            small for the estimate (or no larger than one that refused the request as too
            long) · it is disabled after an auth error (disabled.py)
        retry_call(budgeted_retry_on)            retry.py: budgets, Retry-After, full jitter
            compose(middlewares, adapter)        one pass = one try = one `Attempt`
        failed: matrix action (next · larger window only · skip the host · disable and alert)
    no window large enough: truncate (ContextConfig.truncation) and try the largest window once
    still nothing: stale_lookup(request) → answer with cached=True, else the failure

**Nesting: retry wraps the middleware chain, not the other way round.** Each try passes through the
whole chain again, so the rate limiter counts and re-evaluates every HTTP try (a wait, or a
`LocalRateLimited` refusal, is decided per try), a breaker opened by the previous failure
refuses the retry, the tracker times each try, and one pass is exactly one `Attempt`, which
is what a task's history and its cost need. A refusal (`Refused`) is never retried: the chain
moves to the next deployment at once, with no sleep. The cost of this order is that a cache
middleware inside the chain is asked once per try, which is a cheap lookup.

Every step is one `schema.Attempt`: each try (ok, cached or error), each skip (error, no call), the
stale-cache answer (outcome "cached"). Refusals, skips and cache answers cost 0 and no tokens.
Every non-ok attempt has its `ProviderError` in `TierCall.errors`, in the same order.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from parjanya.config import ContextConfig, Deployment, RetryConfig
from parjanya.providers.base import (
    ChatRequest,
    ChatResponse,
    ContentFiltered,
    ContextTooLong,
    DeploymentDisabled,
    InternalError,
    Provider,
    ProviderError,
)
from parjanya.queues import Tier
from parjanya.resilience.base import Balancer, CallMiddleware, Next, compose
from parjanya.resilience.context import fit, needed_tokens
from parjanya.resilience.disabled import DisabledDeployments, disable_and_alert
from parjanya.resilience.matrix import Action, rule_for
from parjanya.resilience.retry import OnRetry, RetryDetails, budgeted_retry_on, retry_call
from parjanya.schema import Attempt, Truncation, utcnow

__all__ = ["OnAttempt", "StaleLookup", "TierCall", "call_tier"]

log = logging.getLogger(__name__)

OnAttempt = Callable[[Attempt], None]
StaleLookup = Callable[[ChatRequest], Awaitable[ChatResponse | None]]

#: What a prompt needs when no `ContextConfig` is given: skip windows too small, never cut.
_NO_TRUNCATION = ContextConfig(truncation="none")


@dataclass
class TierCall:
    """The outcome of one tier: the answer (if any), who gave it, and every step on the way."""

    response: ChatResponse | None = None
    deployment: Deployment | None = None
    attempts: list[Attempt] = field(default_factory=list)  # one per try, skip or cache step
    errors: list[ProviderError] = field(default_factory=list)  # one per non-ok attempt, in order
    truncation: Truncation | None = None  # the prompt was cut to fit (and sent cut)
    cached: bool = False  # the answer came from a cache: no call, no cost

    @property
    def ok(self) -> bool:
        return self.response is not None

    @property
    def last_error(self) -> ProviderError | None:
        return self.errors[-1] if self.errors else None


@dataclass
class _Recorder:
    """Turns each step into an `Attempt` on the result and hands it to the hook."""

    result: TierCall
    hop: int
    tier: Tier
    on_attempt: OnAttempt | None

    def ok(self, deployment: Deployment, response: ChatResponse, started: datetime) -> None:
        if response.cached:  # a cache middleware answered: nothing was spent
            self.cached(response, started, deployment=deployment.name)
            return
        self._add(
            deployment.name,
            started,
            outcome="ok",
            model=response.model,
            tokens_in=response.tokens_in,
            tokens_out=response.tokens_out,
            cost_usd=deployment.cost_usd(response.tokens_in, response.tokens_out),
        )

    def cached(self, response: ChatResponse, started: datetime, *, deployment: str) -> None:
        self._add(deployment, started, outcome="cached", model=response.model)

    def error(self, deployment: Deployment, error: ProviderError, started: datetime) -> None:
        self.result.errors.append(error)
        self._add(
            deployment.name,
            started,
            outcome="error",
            model=deployment.model,
            error_type=error.error_type,
            error=str(error),
        )

    def _add(self, deployment: str, started: datetime, **fields: object) -> None:
        attempt = Attempt.model_validate(
            {
                "hop": self.hop,
                "stage": self.tier,
                "tier": self.tier,
                "deployment": deployment,
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
            log.exception("on_attempt hook failed for deployment %s", deployment)


def _adapter_endpoint(providers: Callable[[Deployment], Provider]) -> Next:
    """The innermost link: the deployment's adapter, with anything off the tree wrapped."""

    async def call_adapter(deployment: Deployment, request: ChatRequest) -> ChatResponse:
        try:
            return await providers(deployment).chat(request)
        except ProviderError:
            raise
        except Exception as exc:  # e.g. a provider kind with no adapter yet, or an adapter bug
            raise InternalError.wrap(exc, deployment=deployment.name) from exc

    return call_adapter


def _host(deployment: Deployment) -> tuple[str, str]:
    """What "another provider" means: another vendor, or another endpoint host."""
    return deployment.provider, urlsplit(deployment.base_url).hostname or deployment.base_url


def _safe(on_retry: OnRetry | None) -> OnRetry | None:
    if on_retry is None:
        return None

    def hook(details: RetryDetails) -> None:
        try:
            on_retry(details)
        except Exception:  # a broken observer must not change the outcome of the call
            log.exception("on_retry hook failed")

    return hook


@dataclass
class _Chain:
    """The state of one tier call as it walks the deployments."""

    call: Next
    request: ChatRequest
    retry: RetryConfig
    context: ContextConfig
    disabled: DisabledDeployments | None
    on_retry: OnRetry | None
    record: _Recorder
    order: list[Deployment] = field(default_factory=list)
    limits: dict[str, int] = field(default_factory=dict)  # known window, shrunk by a refusal
    filtered_by: dict[tuple[str, str], str] = field(default_factory=dict)  # host → deployment

    async def walk(self, order: Sequence[Deployment]) -> bool:
        """Each deployment in turn until one answers; then, if no window fits, the truncation."""
        self.order = list(order)
        self.limits = {d.name: d.context_window for d in order}
        for deployment in self.order:
            if await self.visit(deployment):
                return True
        return await self.truncate_and_retry()

    async def visit(self, deployment: Deployment) -> bool:
        """Skip, or try with retries; True when `deployment` answered."""
        started = utcnow()
        skip = await self._skip(deployment)
        if skip is not None:
            self.record.error(deployment, skip, started)
            return False
        try:
            response = await retry_call(
                lambda: self._one_try(deployment),
                policy=self.retry,
                retry_on=budgeted_retry_on(self.retry),
                on_retry=self.on_retry,
            )
        except ProviderError as error:  # every try is already recorded
            await self._give_up(deployment, error)
            return False
        result = self.record.result
        result.response, result.deployment = response, deployment
        result.cached = response.cached
        return True

    async def _one_try(self, deployment: Deployment) -> ChatResponse:
        """One pass through the middleware chain, recorded. Only `ProviderError`s leave here."""
        started = utcnow()
        try:
            response = await self.call(deployment, self.request)
        except ProviderError as error:
            self.record.error(deployment, error, started)
            raise
        except Exception as exc:  # a middleware bug: recorded and treated as "internal"
            wrapped = InternalError.wrap(exc, deployment=deployment.name)
            self.record.error(deployment, wrapped, started)
            raise wrapped from exc
        self.record.ok(deployment, response, started)
        return response

    async def _skip(self, deployment: Deployment) -> ProviderError | None:
        """Why `deployment` is not worth a call, or None."""
        name = deployment.name
        host = _host(deployment)
        if host in self.filtered_by:
            by = self.filtered_by[host]
            return ContentFiltered(
                f"skipped: {by} on the same provider ({host[0]} at {host[1]}) filtered this "
                "request",
                deployment=name,
            )
        needed = needed_tokens(self.request, self.context)
        if needed > self.limits[name]:
            return ContextTooLong(
                f"skipped: the request needs about {needed} tokens; the window holds "
                f"{self.limits[name]}",
                deployment=name,
            )
        reason = await self._disabled_reason(name)
        if reason is not None:
            return DeploymentDisabled(f"skipped: disabled ({reason})", deployment=name)
        return None

    async def _disabled_reason(self, name: str) -> str | None:
        if self.disabled is None:
            return None
        try:
            return await self.disabled.reason(name)
        except Exception:  # the store is down: fail open, the breaker still guards the call
            log.exception("could not read whether deployment %s is disabled", name)
            return None

    async def _give_up(self, deployment: Deployment, error: ProviderError) -> None:
        """What the matrix says to do once `deployment` has failed for good."""
        match rule_for(error).action:
            case Action.LARGER_WINDOW:  # no window up to this one holds the request
                ceiling = needed_tokens(self.request, self.context) - 1
                for other in self.order:
                    if other.context_window <= deployment.context_window:
                        self.limits[other.name] = min(self.limits[other.name], ceiling)
            case Action.OTHER_PROVIDER:
                self.filtered_by.setdefault(_host(deployment), deployment.name)
            case Action.DISABLE:
                await disable_and_alert(self.disabled, deployment.name, str(error))
            case _:
                pass  # retry budget spent, refused, bad request, internal: the next one

    async def truncate_and_retry(self) -> bool:
        """No window holds the prompt: cut it to fit the largest and try that deployment once."""
        needed = needed_tokens(self.request, self.context)
        if not self.order or any(needed <= self.limits[d.name] for d in self.order):
            return False  # some window was large enough: that one failed for another reason
        largest = max(self.order, key=lambda d: self.limits[d.name])
        fitted = fit(self.request, self.limits[largest.name], self.context)
        if fitted is None:
            log.info("prompt of ~%d tokens fits no window and cannot be cut to fit", needed)
            return False
        self.request, self.record.result.truncation = fitted
        return await self.visit(largest)


async def _order(
    balancer: Balancer | None, deployments: Sequence[Deployment], request: ChatRequest
) -> list[Deployment]:
    if balancer is None:
        return list(deployments)
    try:
        return list(await balancer.order(deployments, request))
    except Exception:  # a broken balancer must not stop the tier: use the configured order
        log.exception("balancer failed; falling back to the configured order")
        return list(deployments)


async def _serve_stale(
    stale_lookup: StaleLookup | None,
    request: ChatRequest,
    deployments: Sequence[Deployment],
    record: _Recorder,
) -> None:
    """The hierarchy's "cached response" step, after every deployment failed."""
    if stale_lookup is None:
        return
    started = utcnow()
    try:
        response = await stale_lookup(request)
    except Exception:
        log.exception("stale cache lookup failed")
        return
    if response is None:
        return
    result = record.result
    result.response = response.model_copy(update={"cached": True})
    result.deployment = next((d for d in deployments if d.name == response.deployment), None)
    result.cached = True
    record.cached(response, started, deployment=response.deployment)


async def call_tier(
    deployments: Sequence[Deployment],
    request: ChatRequest,
    *,
    providers: Callable[[Deployment], Provider],
    retry: RetryConfig,
    hop: int,
    tier: Tier,
    middlewares: Sequence[CallMiddleware] = (),
    balancer: Balancer | None = None,
    stale_lookup: StaleLookup | None = None,
    disabled: DisabledDeployments | None = None,
    context: ContextConfig | None = None,
    on_attempt: OnAttempt | None = None,
    on_retry: OnRetry | None = None,
) -> TierCall:
    """Walk the tier's fallback chain until something answers; never raises for a failed call.

    `middlewares` wrap each try (first = outermost), `balancer` orders the deployments (default:
    as given), `stale_lookup` is the last resort after every deployment failed, `disabled` is the
    shared store an auth error writes to and every call reads. Without `context`, a prompt too
    large for a window still skips it, but nothing is truncated. `on_attempt` sees each step
    and `on_retry` each wait, as they happen; a failing hook is logged and ignored.
    """
    result = TierCall()
    record = _Recorder(result=result, hop=hop, tier=tier, on_attempt=on_attempt)
    chain = _Chain(
        call=compose(middlewares, _adapter_endpoint(providers)),
        request=request,
        retry=retry,
        context=context or _NO_TRUNCATION,
        disabled=disabled,
        on_retry=_safe(on_retry),
        record=record,
    )
    try:
        if not await chain.walk(await _order(balancer, deployments, request)):
            await _serve_stale(stale_lookup, request, deployments, record)
    except Exception as exc:  # a bug here must not take the worker down with it
        log.exception("tier %s fallback chain failed", tier)
        result.errors.append(InternalError.wrap(exc, deployment="-"))
    return result
