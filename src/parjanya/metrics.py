"""Prometheus metrics: every name in one place, the same names the alert rules in deploy/ use.

Pieces report through these objects; none of them decides anything from a metric. A pool serves
them on its own port (`metrics_serve.py`), merged across its processes when its work runs in
forked children (prometheus-client's multiprocess mode, which the launcher switches on by setting
`PROMETHEUS_MULTIPROC_DIR` before this module is imported). Series read from Redis on a scrape
(queue depths, oldest-message ages, dead-letter depths, breaker states) are not here but in
`metrics_sampler.py`, which names them with the constants below.

Label values are bounded: tiers, stages, statuses and reasons are enums, deployments and models
come from the config, and the tenant label goes through `worker/observe.py`'s `TenantLabels`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

#: Wide enough for a cached answer and for a task near the 300 s time limit, dense enough in
#: between that `histogram_quantile` gives p50/p95/p99 within one bucket's width.
TASK_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 7.5, 10, 15, 20, 30,
    45, 60, 90, 120, 180, 240, 300, 600,
)  # fmt: skip
MODEL_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 60, 120,
)  # fmt: skip

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
    "Model call latency per deployment (every HTTP try).",
    ["deployment"],
    buckets=MODEL_BUCKETS,
)
TASKS = Counter(
    "parjanya_tasks_total",
    "Tasks that reached a terminal state, by the stage they ended on and their status.",
    ["tier", "status"],
)
TASK_LATENCY = Histogram(
    "parjanya_task_latency_seconds",
    "Submit to terminal state, by the stage the task ended on and its status.",
    ["tier", "status"],
    buckets=TASK_BUCKETS,
)
MODEL_LATENCY = Histogram(
    "parjanya_model_latency_seconds",
    "One tier attempt's duration (retries and backoff of one deployment included), per model.",
    ["tier", "model"],
    buckets=MODEL_BUCKETS,
)
TOKENS = Counter(
    "parjanya_tokens_total",
    "Tokens billed, per tier, model and tenant; direction is input or output.",
    ["tier", "model", "tenant", "direction"],
)
COST = Counter(
    "parjanya_cost_usd_total",
    "Cost in USD from the configured prices, per tier, model and tenant.",
    ["tier", "model", "tenant"],
)
ESCALATIONS = Counter(
    "parjanya_escalations_total", "Hops moved up a tier.", ["from_tier", "to_tier", "reason"]
)
DEAD_LETTERS = Counter(
    "parjanya_dead_letters_total", "Tasks or unreadable messages dead-lettered.", ["queue"]
)
CACHE_HITS = Counter("parjanya_cache_hits_total", "Answers served from the cache.", ["kind"])
COMPLEXITY = Histogram(
    "parjanya_complexity_score",
    "The classifier's 1-10 complexity score, by the tier the task was routed to.",
    ["tier"],
    buckets=(1, 2, 3, 3.5, 4, 5, 6, 6.5, 7, 8, 9, 10),
)
RATE_LIMIT_WAITS = Histogram(
    "parjanya_rate_limit_wait_seconds",
    "Time a call waited for an rpm/tpm slot before it was sent (only calls that waited).",
    ["deployment"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
RATE_LIMITED = Counter(
    "parjanya_rate_limited_total",
    "Calls refused a slot within rate_limit.max_wait_s (moved to another deployment).",
    ["deployment"],
)
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
INFLIGHT = Gauge(
    "parjanya_inflight_calls",
    "Model calls in flight in this pool.",
    ["tier"],
    multiprocess_mode="livesum",
)

# Read from the broker and the store at scrape time by `metrics_sampler.Sampler`.
QUEUE_DEPTH = "parjanya_queue_depth"
QUEUE_OLDEST_AGE = "parjanya_queue_oldest_age_seconds"
DEAD_LETTER_DEPTH = "parjanya_dead_letter_depth"
BREAKER_STATE = "parjanya_breaker_state"
