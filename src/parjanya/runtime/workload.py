"""A synthetic AI-agent coding workload: 60 % routine, 30 % architectural, 10 % research.

The mix follows the product brief's observation about agent coding systems. Prompts are built from
templates x fillers so that the demo, the integration tests and the benchmarks all see varied but
reproducible traffic: the same `(n, seed)` always yields the same list, and each item carries its
category so a caller can check where the classifier sent it.

The templates are written to read like real agent tasks: routine items are small and fully
specified; architectural items ask for a design under constraints, sometimes with the relevant
modules attached; research items are investigations with pasted logs, explicit constraints and
deliverables, and usually (as when an agent attaches a repository slice) a large `context_tokens`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final, Literal

from parjanya.runtime.templates import ARCHITECTURAL, RESEARCH, ROUTINE
from parjanya.schema import Sla, TaskRequest

Category = Literal["routine", "architectural", "research"]
MIX: Final[tuple[tuple[Category, float], ...]] = (
    ("routine", 0.6),
    ("architectural", 0.3),
    ("research", 0.1),
)


def demo_workload(n: int, seed: int = 7) -> list[tuple[str, TaskRequest]]:
    """`n` (category, request) pairs in a deterministic, shuffled 60/30/10 mix."""
    rng = random.Random(seed)
    categories = _category_sequence(n)
    rng.shuffle(categories)
    return [(category, _build(category, rng)) for category in categories]


def _category_sequence(n: int) -> list[Category]:
    routine = round(n * MIX[0][1])
    architectural = min(n - routine, round(n * MIX[1][1]))
    counts: dict[Category, int] = {
        "routine": routine,
        "architectural": architectural,
        "research": n - routine - architectural,
    }
    return [category for category, count in counts.items() for _ in range(count)]


def _build(category: Category, rng: random.Random) -> TaskRequest:
    profile = _PROFILES[category]
    index = rng.randrange(len(profile.templates))
    prompt = profile.templates[index].format_map(_Fill(rng))
    context = profile.context(rng)
    return TaskRequest(
        prompt=prompt.strip(),
        context_tokens=context or None,
        sla=profile.sla(rng),
        metadata={"category": category, "template": index},
    )


class _Fill(dict[str, str]):
    """Picks a filler the first time a template names it, then reuses it within the prompt."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng

    def __missing__(self, key: str) -> str:
        generate = _GENERATED.get(key)
        value = generate(self) if generate else self._pick(key)
        self[key] = value
        return value

    def _pick(self, key: str) -> str:
        """`queue_a` and `queue_b` draw from the `queue` pool and never name the same thing."""
        pool, _, suffix = key.rpartition("_")
        if suffix not in ("a", "b", "c") or pool not in _FILLERS:
            return self.rng.choice(_FILLERS[key])
        taken = {self[f"{pool}_{s}"] for s in "abc" if f"{pool}_{s}" in self}
        return self.rng.choice([value for value in _FILLERS[pool] if value not in taken])


class _Profile:
    def __init__(
        self,
        templates: tuple[str, ...],
        sla: Callable[[random.Random], Sla],
        context: Callable[[random.Random], int],
    ) -> None:
        self.templates = templates
        self.sla = sla
        self.context = context


def _weighted_sla(critical: float, batch: float) -> Callable[[random.Random], Sla]:
    def pick(rng: random.Random) -> Sla:
        roll = rng.random()
        if roll < critical:
            return Sla.critical
        return Sla.batch if roll < critical + batch else Sla.standard

    return pick


def _attached(share: float, low: int, high: int) -> Callable[[random.Random], int]:
    """A share of tasks arrive with files attached, sized between low and high tokens."""

    def pick(rng: random.Random) -> int:
        return rng.randrange(low, high + 1, 100) if rng.random() < share else 0

    return pick


# -- generated fillers: blocks that depend on the prompt's other choices --------------------------


def _log_excerpt(fill: _Fill) -> str:
    """A dozen interleaved log lines, in time order, from the service the prompt is about."""
    rng = fill.rng
    services = [fill["service"].replace(" ", "-"), rng.choice(("ledger", "api-gateway", "worker"))]
    day, minute, millis = rng.randrange(10, 28), rng.randrange(0, 50), rng.randrange(0, 60_000)
    lines = []
    for _ in range(rng.randrange(8, 16)):
        millis += rng.randrange(5, 2_500)
        level, message = rng.choice(_LOG_MESSAGES)
        text = message.format(id=rng.randrange(10_000, 99_999), ms=rng.randrange(5, 4_000))
        stamp = f"2025-03-{day} 14:{minute + millis // 60_000:02d}:{millis % 60_000 / 1000:06.3f}"
        lines.append(f"{stamp} {level} [{rng.choice(services)}] {text}")
    return "\n".join(lines)


def _maybe_list(
    title: str, pool: tuple[str, ...], share: float, sizes: tuple[int, int], numbered: bool
) -> Callable[[_Fill], str]:
    """A trailing "Constraints:" or "Deliver:" list on a share of prompts, as people write them."""

    def block(fill: _Fill) -> str:
        if fill.rng.random() >= share:
            return ""
        items = fill.rng.sample(pool, fill.rng.randrange(sizes[0], sizes[1] + 1))
        marks = [f"{i}." for i in range(1, len(items) + 1)] if numbered else ["-"] * len(items)
        return f"\n\n{title}:\n" + "\n".join(
            f"{m} {item}" for m, item in zip(marks, items, strict=True)
        )

    return block


_LOG_MESSAGES: Final = (
    ("INFO", "lease acquired for job {id} (ttl=30s)"),
    ("INFO", "committed offset {id} on partition 3"),
    ("WARN", "lease renewal for job {id} took {ms}ms"),
    ("WARN", "retrying request {id} after timeout ({ms}ms)"),
    ("ERROR", "duplicate key value violates unique constraint on id {id}"),
    ("ERROR", "version conflict for record {id}: expected 7, found 8"),
    ("INFO", "rebalance started, revoking partitions [1, 3]"),
    ("DEBUG", "cache miss for key order:{id}, loading from primary"),
    ("ERROR", "deadline exceeded calling downstream after {ms}ms"),
    ("WARN", "clock skew of {ms}ms detected against ntp"),
)
_DESIGN_CONSTRAINTS: Final = (
    "must stay backward compatible with clients still on API v2",
    "no new infrastructure beyond PostgreSQL, Redis and Kafka",
    "the change must ship behind a feature flag",
    "at most two engineer-weeks of work",
    "p99 latency must stay under 80 ms",
    "the on-call team must be able to operate it from the existing dashboards",
)
_INCIDENT_CONSTRAINTS: Final = (
    "must not require downtime or a maintenance window",
    "every data repair must be reversible",
    "personal data must not leave the EU region",
    "p99 latency must stay under 80 ms",
    "must not lose or duplicate any payment event",
    "the fix must ship behind a feature flag",
)
_INCIDENT_DELIVERABLES: Final = (
    "the root cause, with the evidence from the logs that supports it",
    "a minimal reproduction, or an argument why one is not possible",
    "the fix, and a proof or a test showing it is correct under retries and concurrency",
    "the blast radius: which customers and records were affected",
    "a rollout and rollback plan",
    "the monitoring that would have caught this earlier",
    "the open questions that need more data, and which data would answer them",
)
_ANALYSIS_DELIVERABLES: Final = (
    "the definitions and invariants the argument relies on",
    "the proof, step by step, with each inequality justified",
    "a worst-case input and the cost it incurs",
    "where the attached implementation deviates from the analysed structure",
    "the assumptions under which the result stops holding",
    "a small benchmark design that would confirm the bound empirically",
)

_GENERATED: Final[dict[str, Callable[[_Fill], str]]] = {
    "logs": _log_excerpt,
    "design_constraints": _maybe_list("Constraints", _DESIGN_CONSTRAINTS, 0.35, (2, 4), False),
    "incident_constraints": _maybe_list("Constraints", _INCIDENT_CONSTRAINTS, 0.6, (2, 4), False),
    "incident_deliverables": _maybe_list("Deliver", _INCIDENT_DELIVERABLES, 0.6, (3, 5), True),
    "analysis_deliverables": _maybe_list("Deliver", _ANALYSIS_DELIVERABLES, 0.6, (3, 5), True),
}

_FILLERS: Final[dict[str, tuple[str, ...]]] = {
    "path": (
        "src/billing/invoice.py", "internal/cache/lru.go", "web/src/components/Cart.tsx",
        "services/auth/token_store.rb", "crates/ingest/src/parser.rs", "app/models/user.py",
        "lib/scheduler/cron.js", "pkg/api/handlers.go", "src/utils/dates.ts",
    ),
    "old": ("usr_cnt", "tmp", "data", "cfg", "x", "getData", "mgr", "lst", "val2"),
    "new": (
        "user_count", "retry_delay_s", "order_rows", "settings", "timeout_s", "fetch_orders",
        "connection_pool", "pending_jobs", "discount_rate",
    ),
    "func": (
        "parse_invoice", "compute_backoff", "load_settings", "render_cart", "merge_segments",
        "normalize_email", "format_price", "chunk_list", "slugify",
    ),
    "typo": ("recieve", "seperate", "occured", "lenght", "retreive", "adress"),
    "args": ("a list of strings", "a dict of settings", "two integers", "a file path"),
    "ret": ("a list of strings", "a float", "None", "a dict", "an empty string"),
    "date_format_pair": (
        "MM/DD/YYYY to ISO 8601", "DD.MM.YYYY to YYYY-MM-DD", "Unix epoch seconds to RFC 3339",
        "YYYY-MM-DD to 'March 3, 2025'",
    ),
    "date_example": ("03/14/2025", "14.03.2025", "1741948800", "2025-03-14"),
    "regex_task": (
        "matches semantic version strings like 1.4.2", "extracts hashtags from a tweet",
        "validates a five-digit ZIP code", "matches hex colour codes like #a1b2c3",
        "captures the key and value from lines like key=value",
    ),
    "param": ("timeout", "max_retries", "page_size", "log_level", "batch_size"),
    "value_pair": ("30 to 10", "3 to 5", "50 to 100", "'INFO' to 'WARNING'", "500 to 1000"),
    "language": ("German", "Spanish", "Japanese", "French"),
    "message": ("File not found", "Your session has expired", "Payment declined", "Invalid input"),
    "module": ("os", "json", "itertools", "typing", "requests", "lodash"),
    "version_pair": (
        "1.4.2 to 1.4.3", "0.9.0 to 0.10.0", "2.1.0 to 2.2.0", "3.0.0rc1 to 3.0.0",
        "1.12.4 to 1.13.0",
    ),
    "git_flag": (
        "--force-with-lease flag of git push", "--autostash flag of git rebase",
        "-p flag of git add", "--ff-only flag of git merge", "--depth flag of git clone",
    ),
    "magic_constant": ("86400", "3600", "1024", "0.15", "65535"),
    "collection": ("rows", "items", "orders", "prices", "events"),
    "directory": ("build", ".venv", "coverage", "node_modules", ".mypy_cache"),
    "service": (
        "order service", "payment gateway", "notification worker", "search indexer",
        "session store", "checkout API", "inventory service", "report generator",
    ),
    "component": (
        "rate limiter", "job scheduler", "plugin system", "audit log", "feature-flag service",
        "webhook dispatcher", "permission model", "cache layer",
    ),
    "requirement": (
        "support per-tenant quotas", "survive a node restart without losing state",
        "handle 5,000 requests per second", "keep every change auditable",
        "work across three regions", "allow rolling deploys",
    ),
    "limit": (
        "add more than 5 ms to p99 latency", "require a new database", "break existing clients",
        "need a full-time operator",
    ),
    "store": ("Redis", "PostgreSQL", "DynamoDB", "Memcached", "an in-process LRU cache"),
    "queue": ("Kafka", "RabbitMQ", "Amazon SQS", "Redis streams", "Celery on Redis"),
    "schema": ("Avro with a schema registry", "Protobuf", "JSON Schema", "CloudEvents envelopes"),
    "coordinator": ("etcd leases", "PostgreSQL advisory locks", "ZooKeeper", "Redis locks"),
    "algorithm_option": ("a token bucket", "a sliding window log", "a fixed window counter"),
    "datastore": ("Redis", "PostgreSQL", "MongoDB", "Cassandra"),
    "legacy_store": ("MySQL 5.7", "a single PostgreSQL instance", "MongoDB 4", "Redis"),
    "target_store": ("PostgreSQL 16", "a sharded PostgreSQL cluster", "DynamoDB", "Cassandra"),
    "dependency": ("the payment provider", "the real database", "S3", "the email API"),
    "count": ("40", "65", "120", "18"),
    "minutes": ("25", "40", "12"),
    "percent": ("0.3", "1.5", "0.05", "2"),
    "entity": ("order", "invoice", "payout", "shipment", "subscription renewal"),
    "bad_effect": (
        "charged twice", "shipped twice", "lost after an acknowledged write", "left half-applied",
    ),
    "mechanism": (
        "Redis lock with a 30 s TTL", "optimistic version check", "idempotency key table",
        "Kafka consumer group",
    ),
    "algorithm": (
        "a dynamic array that grows by 1.5x and shrinks at one quarter full",
        "a splay tree under a sequence of m accesses", "union-find with path compression",
        "a hash table with linear probing and lazy deletion",
    ),
    "milliseconds": ("50", "120", "250", "20"),
    "library": ("the HTTP client", "the ORM", "the JSON serializer", "the gRPC runtime"),
}  # fmt: skip

_PROFILES: Final[dict[Category, _Profile]] = {
    "routine": _Profile(ROUTINE, _weighted_sla(0.0, 0.2), _attached(0.3, 200, 1_500)),
    "architectural": _Profile(
        tuple(template + "{design_constraints}" for template in ARCHITECTURAL),
        _weighted_sla(0.15, 0.1),
        _attached(0.5, 2_000, 12_000),
    ),
    "research": _Profile(RESEARCH, _weighted_sla(0.3, 0.0), _attached(0.85, 30_000, 120_000)),
}
