"""Every Redis key Parjanya's store writes, built in one place (queue names live in `queues.py`).

A task's keys live in one of `SHARDS` store shards, chosen from its id (`shard_of`). Every key of
one shard carries the same Redis Cluster hash tag (`{s<n>}`), so each of the store's scripts, which
touches one task's keys together with its shard's in-flight set, counters, dead-letter index and
webhook outbox, stays in one hash slot: a Redis Cluster can hold the store, and a plain Redis holds
it the same way. Readers of what is process-wide (the reaper's sweep, counters, the dead-letter
list, the webhook outbox) go over every shard.
"""

from __future__ import annotations

import zlib

PREFIX = "parjanya:"

#: How many store shards there are. Part of the key layout, not a setting: every process must
#: find a task in the same shard, and a task written under another count could not be found.
#: 16 spreads the store over up to 16 Redis Cluster primaries.
SHARDS = 16

#: One Redis Cluster hash tag per shard: `{s0}` .. `{s15}`.
_TAGS = tuple(f"{{s{n}}}" for n in range(SHARDS))

#: One value shared by every worker; a worker with another value refuses to start.
VISIBILITY_TIMEOUT = PREFIX + "cluster:visibility_timeout"
#: Held by whichever worker is reaping this period.
REAPER_LOCK = PREFIX + "reaper:lock"
#: Hash of the counters counted outside the store's scripts (shedding, deduplicated deliveries,
#: raw dead letters, cancels). The scripts count into their shard's `counters(shard)`;
#: `TaskStore.counters()` adds them all up.
COUNTERS = PREFIX + "counters"
#: Capped stream of outcome records: answered tasks and shadow verdicts (store/outcomes.py).
OUTCOMES = PREFIX + "outcomes"


def shard_of(task_id: str) -> int:
    """The store shard of a task (or a dead letter, or an idempotency key): CRC-32 of it, mod
    `SHARDS`. Stable across processes and Python versions, unlike `hash()`."""
    return zlib.crc32(task_id.encode()) % SHARDS


def all_shards() -> range:
    return range(SHARDS)


# --- one shard's keys: what the store's scripts touch beside a task's own -----------------------


def inflight(shard: int) -> str:
    """Sorted set of a shard's non-terminal task ids, scored by when the reaper should look next."""
    return f"{PREFIX}inflight:{_TAGS[shard]}"


def counters(shard: int) -> str:
    """Hash of the counts the store's scripts make (expired tasks, ...) in one shard."""
    return f"{PREFIX}counters:{_TAGS[shard]}"


def dead_letter_index(shard: int) -> str:
    """Sorted set of a shard's dead-letter ids, scored by the time they died."""
    return f"{PREFIX}dlq:index:{_TAGS[shard]}"


def webhook_outbox(shard: int) -> str:
    """Sorted set of a shard's task ids whose callback is owed, scored by when it is due (unix s)."""
    return f"{PREFIX}webhooks:due:{_TAGS[shard]}"


def webhook_log(shard: int) -> str:
    """Capped list of a shard's finished deliveries (delivered, failed, refused), newest first."""
    return f"{PREFIX}webhooks:log:{_TAGS[shard]}"


# --- one task's keys, in its shard ---------------------------------------------------------------


def task(task_id: str) -> str:
    return f"{PREFIX}task:{_TAGS[shard_of(task_id)]}:{task_id}"


def done(task_id: str) -> str:
    """A one-element list that exists once the task is terminal: waiters block on it."""
    return f"{PREFIX}done:{_TAGS[shard_of(task_id)]}:{task_id}"


def idempotency(key: str) -> str:
    """In the shard of the key itself: a repeated submission finds it before it has a task id
    (`creation.create_call` then draws the new task's id in the same shard)."""
    return f"{PREFIX}idem:{_TAGS[shard_of(key)]}:{key}"


def dead_letter(dead_letter_id: str) -> str:
    return f"{PREFIX}dlq:entry:{_TAGS[shard_of(dead_letter_id)]}:{dead_letter_id}"


def webhook(task_id: str) -> str:
    """Hash of one task's callback delivery: attempts so far, last answer, lease holder."""
    return f"{PREFIX}webhook:{_TAGS[shard_of(task_id)]}:{task_id}"


def unused(task_id: str) -> str:
    """Stands in, in the task's shard, for an optional key a script call does not use (no
    idempotency key, no queue to push to): a Redis Cluster wants every key of one call in one
    hash slot, and `''` has a slot of its own. Never read or written."""
    return f"{PREFIX}unused:{_TAGS[shard_of(task_id)]}"


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


# --- API keys and tenants' webhook secrets (store/apikeys.py, webhooks/) -------------------------

#: Hash of every API key by its public id: id → JSON record (tenant, rate, created_at, digest).
API_KEYS = PREFIX + "apikeys"


def api_key(digest: str) -> str:
    """Hash of one API key, found by the SHA-256 of the key itself (the key is never stored)."""
    return f"{PREFIX}apikey:{digest}"


def webhook_secret(tenant: str) -> str:
    """One tenant's webhook signing secret (what receivers verify signatures with)."""
    return f"{PREFIX}tenant:{tenant}:webhook_secret"
