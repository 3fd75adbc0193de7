"""What a hop reports to Prometheus once its outcome is known: one call per outcome, no decisions.

The hop code calls these after its commit (so a hop whose write was refused, a stale duplicate,
is never counted), the way `learning.answered` is called; nothing here touches the store.
Tokens and cost carry a tenant label, bounded by `TenantLabels`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from parjanya import metrics
from parjanya.config import MetricsConfig
from parjanya.schema import Attempt, RoutingDecision, TaskResult, utcnow

#: The label value of a task without a tenant, and of tenants beyond the bound.
NO_TENANT = "_none"
OTHER_TENANTS = "_other"


class TenantLabels:
    """Maps tenants to label values: listed ones keep their name, then the first `max_tenants`
    others seen by this process, then "_other". A series per tenant is what operators want for
    the few that pay; a tenant name per request (a UUID) must not become a series each."""

    def __init__(self, listed: Iterable[str], max_tenants: int) -> None:
        self._listed = frozenset(listed)
        self._seen: set[str] = set()
        self._max = max_tenants
        self._lock = threading.Lock()

    def __call__(self, tenant: str | None) -> str:
        if tenant is None:
            return NO_TENANT
        if tenant in self._listed or tenant in self._seen:
            return tenant
        with self._lock:
            if len(self._seen) < self._max:
                self._seen.add(tenant)
                return tenant
        return OTHER_TENANTS


class HopMetrics:
    """The tenant-labelled series of one worker process (it owns the tenant bound)."""

    def __init__(self, config: MetricsConfig) -> None:
        self.tenant = TenantLabels(config.tenants, config.max_tenants)

    def attempts(self, tier: str, tenant: str | None, attempts: Iterable[Attempt]) -> None:
        """A tier hop's model calls: tokens, cost and duration per model. A cached answer costs
        nothing and took no model time, so it adds no latency sample."""
        label = self.tenant(tenant)
        for attempt in attempts:
            model = attempt.model or attempt.deployment or "unknown"
            if attempt.tokens_in:
                metrics.TOKENS.labels(tier, model, label, "input").inc(attempt.tokens_in)
            if attempt.tokens_out:
                metrics.TOKENS.labels(tier, model, label, "output").inc(attempt.tokens_out)
            if attempt.cost_usd:
                metrics.COST.labels(tier, model, label).inc(attempt.cost_usd)
            if attempt.model is not None and attempt.outcome != "cached":
                elapsed = (attempt.finished_at - attempt.started_at).total_seconds()
                metrics.MODEL_LATENCY.labels(tier, model).observe(max(0.0, elapsed))


def ended(doc: TaskResult, stage: str) -> None:
    """A task reached a terminal state on `stage`: count it and sample submit-to-end latency."""
    status = doc.status.value
    metrics.TASKS.labels(stage, status).inc()
    finished = doc.finished_at or utcnow()
    elapsed = (finished - doc.created_at).total_seconds()
    metrics.TASK_LATENCY.labels(stage, status).observe(max(0.0, elapsed))


def classified(decision: RoutingDecision) -> None:
    metrics.COMPLEXITY.labels(decision.tier).observe(decision.complexity.score)


def escalated(from_tier: str, to_tier: str, reason: str) -> None:
    metrics.ESCALATIONS.labels(from_tier, to_tier, reason).inc()


def dead_lettered(queue: str) -> None:
    metrics.DEAD_LETTERS.labels(queue).inc()
