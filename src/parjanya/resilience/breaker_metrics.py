"""A breaker listener that counts transitions in Prometheus and logs each one as a warning.

Subscribed by whoever builds the chain (`BreakerMiddleware(..., listeners=[record_transition])`),
so the breaker itself imports no metrics. Each transition is emitted by exactly one process (the
one whose write made it), so the counter summed over workers is the cluster's count.
"""

from __future__ import annotations

import logging

from parjanya import metrics
from parjanya.resilience.breaker import BreakerEvent

__all__ = ["record_transition"]

log = logging.getLogger("parjanya.breaker")


def record_transition(event: BreakerEvent) -> None:
    metrics.BREAKER_TRANSITIONS.labels(deployment=event.deployment, state=event.state).inc()
    log.warning(
        "circuit breaker of %s: %s -> %s (%s)",
        event.deployment,
        event.previous,
        event.state,
        event.reason,
    )
