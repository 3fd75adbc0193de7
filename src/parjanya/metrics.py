"""Prometheus metrics: every name in one place, the same names the alert rules in deploy/ use.

Pieces report through these objects; none of them decides anything from a metric. A worker serves
them on `PARJANYA_METRICS_PORT` when that is set (see `serve_metrics`).
"""

from __future__ import annotations

import logging
import os

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("parjanya.metrics")

PROVIDER_CALLS = Counter(
    "parjanya_provider_calls_total",
    "Model calls by deployment and outcome.",
    ["deployment", "outcome"],
)
PROVIDER_ERRORS = Counter(
    "parjanya_provider_errors_total",
    "Failed or refused model calls by error type.",
    ["deployment", "error_type"],
)
PROVIDER_LATENCY = Histogram(
    "parjanya_provider_latency_seconds",
    "Model call latency.",
    ["deployment"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
TASK_LATENCY = Histogram(
    "parjanya_task_latency_seconds",
    "Submit to terminal state, by final tier and status.",
    ["tier", "status"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
ESCALATIONS = Counter(
    "parjanya_escalations_total", "Hops moved up a tier.", ["from_tier", "to_tier", "reason"]
)
DEAD_LETTERS = Counter("parjanya_dead_letters_total", "Dead-lettered tasks or messages.", ["queue"])
CACHE_HITS = Counter("parjanya_cache_hits_total", "Answers served from the cache.", ["kind"])
BREAKER_TRANSITIONS = Counter(
    "parjanya_breaker_transitions_total",
    "Circuit breaker state changes.",
    ["deployment", "state"],
)
DEPLOYMENT_DISABLED = Counter(
    "parjanya_deployment_disabled_total",
    "Deployments disabled after an auth error (alert).",
    ["deployment"],
)
INFLIGHT = Gauge("parjanya_inflight_calls", "Model calls in flight in this process.", ["tier"])
QUEUE_DEPTH = Gauge("parjanya_queue_depth", "Messages waiting on a queue.", ["queue"])


def serve_metrics() -> int | None:
    """Start the exposition endpoint if `PARJANYA_METRICS_PORT` is set; returns the port."""
    port = os.environ.get("PARJANYA_METRICS_PORT")
    if not port:
        return None
    start_http_server(int(port))
    log.info("metrics on :%s/metrics", port)
    return int(port)
