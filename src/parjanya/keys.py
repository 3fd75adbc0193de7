"""Every Redis key Parjanya's store writes, built in one place (queue names live in `queues.py`)."""

from __future__ import annotations

PREFIX = "parjanya:"

#: Sorted set of non-terminal task ids, scored by the time the reaper should look at them next.
INFLIGHT = PREFIX + "inflight"
#: Sorted set of dead-letter ids, scored by the time they died.
DEAD_LETTER_INDEX = PREFIX + "dlq:index"
#: One value shared by every worker; a worker with another value refuses to start.
VISIBILITY_TIMEOUT = PREFIX + "cluster:visibility_timeout"
#: Held by whichever worker is reaping this period.
REAPER_LOCK = PREFIX + "reaper:lock"
#: Hash of counters (deduplicated deliveries, reaper republishes, ...) for ops and tests.
COUNTERS = PREFIX + "counters"
#: Capped stream of outcome records: answered tasks and shadow verdicts (store/outcomes.py).
OUTCOMES = PREFIX + "outcomes"


def task(task_id: str) -> str:
    return f"{PREFIX}task:{task_id}"


def done(task_id: str) -> str:
    """A one-element list that exists once the task is terminal: waiters block on it."""
    return f"{PREFIX}done:{task_id}"


def idempotency(key: str) -> str:
    return f"{PREFIX}idem:{key}"


def dead_letter(dead_letter_id: str) -> str:
    return f"{PREFIX}dlq:entry:{dead_letter_id}"


# --- live call stats and the response cache (resilience/track.py, balance.py, cache.py) --------


def track_inflight(deployment: str) -> str:
    """Sorted set of one deployment's calls in flight (call id → lease deadline, unix seconds)."""
    return f"{PREFIX}track:inflight:{deployment}"


def track_latency(deployment: str) -> str:
    """Hash of one deployment's latency: `ewma` (seconds) and `samples`."""
    return f"{PREFIX}track:latency:{deployment}"


def balance_rotation(group: str) -> str:
    """The round-robin counter shared by every worker for one group of deployments."""
    return f"{PREFIX}balance:rr:{group}"


def cache_fresh(digest: str) -> str:
    """A cached response for one exact request to one model."""
    return f"{PREFIX}cache:fresh:{digest}"


def cache_stale(digest: str) -> str:
    """The longer-lived copy for one request to any model: served only when every deployment failed."""
    return f"{PREFIX}cache:stale:{digest}"


# --- deployments disabled after an auth error (resilience/disabled.py) -------------------------


def disabled_deployment(deployment: str) -> str:
    """Exists (with a TTL) while `deployment` is disabled; the value is the reason."""
    return f"{PREFIX}disabled:{deployment}"


# --- circuit breakers and rate limits (resilience/breaker_store.py, ratelimit_store.py) --------
# The `{deployment}` hash tag keeps one deployment's keys in one Redis Cluster slot, so a single
# script may touch its rpm and tpm keys together.


def breaker(deployment: str) -> str:
    """Hash of one deployment's circuit breaker: state, version, counters, probe lease."""
    return f"{PREFIX}breaker:{{{deployment}}}"


#: Pub/sub channel: a deployment's name is published on it whenever its breaker record changes in a
#: way other processes must not miss (a transition, a probe claim, a failure counted).
BREAKER_CHANGES = PREFIX + "breaker:changes"


def rate_limit(deployment: str, dimension: str) -> str:
    """One deployment's GCRA theoretical arrival time for `dimension` ("rpm" or "tpm"), in µs."""
    return f"{PREFIX}ratelimit:{{{deployment}}}:{dimension}"


# --- admission: deadline estimates and load shedding (governance/deadlines.py, shedding.py) ----


def latency_run(tier: str) -> str:
    """Capped list of a tier's recent hop run times (seconds, newest first)."""
    return f"{PREFIX}latency:{tier}:run"


def latency_wait(tier: str, sla: str) -> str:
    """Capped list of the recent queue waits of one SLA class's hops on a tier (seconds)."""
    return f"{PREFIX}latency:{tier}:wait:{sla}"


#: Hash of the shared load-shedding state: one flag per SLA class, the load that set them, when.
SHEDDING = PREFIX + "shedding"


# --- API keys, tenants' webhook secrets and the webhook outbox (store/apikeys.py, webhooks/) -----

#: Hash of every API key by its public id: id → JSON record (tenant, rate, created_at, digest).
API_KEYS = PREFIX + "apikeys"
#: Sorted set of task ids whose callback is owed, scored by when the next attempt is due (unix s).
WEBHOOK_OUTBOX = PREFIX + "webhooks:due"
#: Capped list of finished deliveries (delivered, failed, refused), newest first, for ops and tests.
WEBHOOK_LOG = PREFIX + "webhooks:log"


def api_key(digest: str) -> str:
    """Hash of one API key, found by the SHA-256 of the key itself (the key is never stored)."""
    return f"{PREFIX}apikey:{digest}"


def webhook_secret(tenant: str) -> str:
    """One tenant's webhook signing secret (what receivers verify signatures with)."""
    return f"{PREFIX}tenant:{tenant}:webhook_secret"


def webhook(task_id: str) -> str:
    """Hash of one task's callback delivery: attempts so far, last answer, lease holder."""
    return f"{PREFIX}webhook:{task_id}"
