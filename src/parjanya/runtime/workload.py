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

_ROUTINE: Final[tuple[str, ...]] = (
    "Rename the variable `{old}` to `{new}` in {path} and update its references.",
    "Fix the typo '{typo}' in the docstring of `{func}` in {path}.",
    "Write a docstring for `{func}` in {path}. It takes {args} and returns {ret}.",
    "Convert the date {date_example} from {date_format_pair}.",
    "Write a regex that {regex_task}.",
    "Add type hints to `{func}` in {path}.",
    "Sort the imports in {path} alphabetically.",
    "Change the default value of `{param}` from {value_pair} in {path}.",
    "Add a unit test for `{func}` that checks it returns {ret} for an empty input.",
    "Replace the print calls in `{func}` with logger.debug calls.",
    'Translate this error message to {language}: "{message}".',
    "Remove the unused import of `{module}` from {path}.",
    "Bump the version in pyproject.toml from {version_pair}.",
    "Make `{func}` return an empty list instead of None when nothing matches.",
    "Update the copyright year in the header of {path} to 2025.",
    "Add the `{directory}` directory to .gitignore.",
    "Extract the magic number {magic_constant} in `{func}` into a named constant.",
    "What does the {git_flag} do?",
    "Rename `{func}` to `{new}` in {path}; keep the old name as a deprecated alias.",
    "Add a trailing newline to {path} and strip trailing whitespace.",
    "Convert this list comprehension to a plain for loop:\n```python\n"
    "result = [{func}(row) for row in {collection} if row]\n```",
    "Fix the off-by-one error in this loop so it visits every element:\n```python\n"
    "for i in range(1, len({collection})):\n    total += {collection}[i]\n```",
)

_ARCHITECTURAL: Final[tuple[str, ...]] = (
    "Design a {component} for the {service}. It must {requirement} and it should not {limit}. "
    "Compare {store_a} versus {store_b} as its backing store, explain the trade-offs, and "
    "recommend one. Sketch the "
    "public interface and the data model.",
    "We want to split the {component} out of the {service} into its own service. Propose the "
    "service boundary, the API between them, and how to migrate data without downtime. What are "
    "the risks, and how would you roll back if the cutover fails?",
    "Refactor the {component} of the {service}: today its logic is spread across {path} and two "
    "other modules. Describe the new module layout, which interfaces change, and how to keep "
    "backward compatibility for existing callers during the transition. Explain why your layout "
    "is easier to test.",
    "Plan the migration of the {service} from {legacy_store} to {target_store}. Requirements:\n"
    "- no downtime for customers\n- it must {requirement}\n- rollback must be possible at every "
    "phase\nGive the phases, the dual-write or backfill strategy, and how to verify consistency "
    "before switching reads.",
    "Propose a caching strategy for the {service}: what to cache, invalidation rules, TTLs, and "
    "how to avoid a thundering herd when popular keys expire. Consider {store_a} versus {store_b} "
    "and justify the choice.",
    "Design the retry and idempotency scheme for calls from the {service} to {dependency}. Clients "
    "may retry requests, and a duplicate must never cause a {entity} to be {bad_effect}. Explain "
    "how keys are generated, stored and expired, and the trade-offs of keeping them in {store_a}.",
    "The {service} has grown to {count} endpoints in one file. Suggest how to reorganise it into "
    "modules, what belongs in each, and how to introduce dependency injection so that handlers can "
    "be unit tested without {dependency}. Which parts should change first, and why?",
    "Design an event schema and a versioning policy for the events the {service} publishes. "
    "Consumers in three teams must keep working when fields are added or renamed. Compare "
    "{schema_a} and {schema_b} for schema evolution and recommend an approach.",
    "Choose between {coordinator_a} and {coordinator_b} for coordinating work in the {service}. "
    "Evaluate "
    "operational cost, latency, failure modes and team familiarity, and justify the "
    "recommendation. If the team later needs multi-region, how does the choice hold up?",
    "Design a {component} that lets operators change behaviour of the {service} at runtime. It "
    "should {requirement}, keep an audit trail, and propagate changes to running instances within "
    "5 seconds. Outline the components, the storage, and the failure modes.",
    "Plan how to add multi-tenancy to the {service}: tenant isolation in the database, per-tenant "
    "rate limits, and how existing single-tenant data is migrated. Which parts of the code need "
    "to change first, and what are the trade-offs of schema-per-tenant versus a tenant_id column?",
    "Restructure the test suite of the {service}: unit tests take {minutes} minutes because they "
    "hit {dependency}. Propose test doubles, how to separate integration tests, and a CI layout "
    "that keeps feedback under 5 minutes. Explain what coverage we might lose and how to "
    "mitigate it.",
    "Design the public API of the {service}: endpoints, pagination, filtering, error model and "
    "versioning. Explain how you would keep it backward compatible when a required field is "
    "added, and compare URL versioning versus header versioning.",
    "We need background job processing for the {service}. Compare {queue_a}, {queue_b} and a "
    "database-backed queue; consider delivery guarantees, retries, observability and deployment, "
    "then recommend one and describe the worker design.",
    "Refactor error handling across the {service}: exceptions are caught and logged in {count} "
    "places with inconsistent messages. Propose an error taxonomy, decide where errors should be "
    "translated, and define how the API should report them. Keep existing clients working.",
    "Design observability for the {service}: which metrics, logs and traces to emit, the SLOs to "
    "set, and the alerts that should page someone. Explain the trade-offs between trace sampling "
    "rate and cost, and why each alert is actionable.",
    "Propose an architecture for the {service} that must handle 20,000 requests per second with "
    "p99 latency below {milliseconds} ms. Identify the likely bottlenecks, the scaling strategy "
    "and how to partition the data, and explain which assumption would break the design first.",
)

_RESEARCH: Final[tuple[str, ...]] = (
    "Investigate an intermittent race condition between the {service} and the ledger in "
    "production: under load roughly {percent}% of each {entity} is {bad_effect}. Logs from both "
    "services are below.\n{logs}\nWork out the root cause step by step:\n"
    "1. Reconstruct the interleaving of the two workers from the timestamps.\n"
    "2. Explain why the existing {mechanism} does not prevent it.\n"
    "3. Propose a fix that must keep p99 latency under {milliseconds} ms and must not require "
    "downtime.\n4. Prove the fix is correct under retries, redelivery and clock skew, or give a "
    "counterexample.\n5. Describe how to verify it in production without risking customer data."
    "{incident_constraints}{incident_deliverables}",
    "Derive the amortized cost per operation of {algorithm}. Prove an upper bound with the "
    "potential method, show a worst case input that makes the bound tight, and explain why the "
    "naive per-operation analysis gives O(n) instead. Then analyze how the bound changes if "
    "operations may fail and be retried, and whether the invariants still hold under concurrent "
    "access. The implementation we use in production is attached; check that it matches the "
    "structure you analyze, and if it does not, identify where it deviates and what the "
    "consequences for the worst case are. Give a rigorous proof, not an intuition."
    "{analysis_deliverables}",
    "Since Tuesday's deploy the {service} has written duplicate {entity} rows in production and "
    "some customers were {bad_effect}. Logs:\n{logs}\nDetermine: (a) the root cause and why our "
    "tests did not catch it; (b) whether any data was lost or corrupted, and which customers "
    "were affected; (c) how to repair the ledger without double-charging or deleting valid rows; "
    "(d) what invariant should be enforced in the database so this cannot happen again. The "
    "repair must be idempotent and reversible, and it must not lock the payments table for more "
    "than a few seconds."
    "{incident_constraints}{incident_deliverables}",
    "PostgreSQL reports deadlocks several times an hour between the {service} and a nightly "
    "batch job, and each one rolls back a payment transaction. Excerpt:\n{logs}\nAnalyze the lock "
    "ordering of both code paths, explain why the deadlock only appears under production load, "
    "and propose at least two fixes with their trade-offs (lock ordering, SELECT ... FOR UPDATE "
    "SKIP LOCKED, splitting the batch). If a fix changes isolation levels, prove that no "
    "anomaly can corrupt balances. Must not add downtime."
    "{incident_constraints}{incident_deliverables}",
    "After upgrading {library}, p99 latency of the {service} rose from 80 ms to 900 ms while p50 "
    "stayed flat, and memory grows until the pods are OOM-killed every few hours. GC logs and "
    "traces are attached. Investigate: which allocation pattern changed, why only the tail is "
    "affected, whether the connection pool is leaking, and how retries from upstream amplify "
    "the problem. Propose a hypothesis for each symptom, the experiment that would confirm or "
    "reject it, and a fix we can roll out safely to production."
    "{incident_constraints}{incident_deliverables}",
    "During a network partition our replicated {datastore} setup lost writes that had been "
    "acknowledged to customers. Logs from the primary and the replicas:\n{logs}\nAnalyze whether "
    "the configuration was ever linearizable, reconstruct exactly which writes were lost and "
    "why, and design a fault-injection test (Jepsen-style) that reproduces it. Then propose a "
    "configuration or architecture that guarantees durability of acknowledged writes, and "
    "explain the latency and availability cost of that guarantee."
    "{incident_constraints}{incident_deliverables}",
    "The security team found that API tokens of the {service} were used from unknown IP "
    "addresses over the weekend. Audit log excerpt:\n{logs}\nInvestigate the likely attack path "
    "(leaked credentials, SSRF, log exposure, a compromised dependency), determine which "
    "customers' data could have been accessed, and what must be rotated, in which order, "
    "without a full outage. Explain our GDPR breach-notification obligations and the evidence "
    "we must preserve before deleting anything."
    "{incident_constraints}{incident_deliverables}",
    "Design an algorithm that merges k sorted event streams with out-of-order arrivals bounded "
    "by a watermark, emitting events in timestamp order with at most {milliseconds} ms of "
    "added latency. Prove correctness (no event emitted out of order, none lost), derive the "
    "time and memory complexity as a function of k and the disorder bound, and analyze what "
    "happens when one stream stalls. Compare with the approach in the attached implementation "
    "and explain where it is wrong."
    "{analysis_deliverables}",
    "Kafka consumers of the {service} process some messages twice after every rebalance, and "
    "the downstream ledger double-counts them. Logs:\n{logs}\nExplain exactly when offsets are "
    "committed relative to side effects, why the cooperative rebalance makes it worse, and "
    "whether exactly-once semantics with transactions would fix it end to end. Propose a design "
    "that must tolerate consumer crashes at any point, and prove that each event affects the "
    "ledger once."
    "{incident_constraints}{incident_deliverables}",
    "Money totals in the monthly invoices disagree by a few cents between the billing service, "
    "the {service} and the finance export. Some amounts are floats, some are integer cents, and "
    "currencies use different rounding rules. Investigate where the discrepancies are "
    "introduced, which invoices already sent to customers are wrong, and how to correct them "
    "without violating tax and audit rules. Propose a single money representation and a "
    "migration plan that must not change any historical ledger entry."
    "{incident_constraints}{incident_deliverables}",
    "Our event-sourced {service} occasionally rebuilds projections in a different order than the "
    "events happened, because producers on different hosts stamp events with wall-clock time. "
    "Logs:\n{logs}\nAnalyze which orderings are possible under the current clock skew, whether "
    "hybrid logical clocks or per-aggregate sequence numbers would fix it, and prove that your "
    "choice yields a deterministic projection. Estimate the cost of re-stamping the existing "
    "event history and the risk of doing so in production."
    "{incident_constraints}{incident_deliverables}",
    "After a Redis Sentinel failover, the {service} served stale and inconsistent session data "
    "for about 40 seconds and some users saw other users' carts. Logs:\n{logs}\nFind the root "
    "cause (replication lag, client-side caching, split brain?), explain why this leaked data "
    "between users, and propose changes to the client, the cache keys and the failover settings. "
    "Which of these must ship before the next failover drill, and why?"
    "{incident_constraints}{incident_deliverables}",
    "Audit the dosage calculation module used by the clinical scheduling service: doses are "
    "computed from patient weight and renal function, with unit conversions between mg, mcg "
    "and mL. The module and its tests are attached. Identify every path where a unit mismatch, "
    "rounding or a missing lab value could produce an unsafe dose, prove which code paths are "
    "safe, and propose changes plus the tests and the regulatory documentation they require."
    "{analysis_deliverables}",
    "We must implement GDPR erasure requests across the {service}, its analytics warehouse, "
    "search index, backups and three downstream vendors. Design the deletion workflow, prove "
    "that no copy of the personal data survives beyond 30 days (including backups and caches), "
    "and explain what must happen if a vendor fails to confirm deletion. Consider legal "
    "holds that must override erasure, and the audit evidence we must keep without retaining "
    "the data itself."
    "{incident_constraints}",
    "A test in the distributed CI of the {service} fails in about {percent}% of runs, only when "
    "more than 8 workers run in parallel, and never locally. Logs:\n{logs}\nInvestigate the "
    "possible sources of nondeterminism (shared ports, time, ordering, leaked state in the test "
    "database), design an experiment to isolate the cause, and explain why the failure rate "
    "grows with parallelism. Propose a fix and a way to prove the test is deterministic."
    "{incident_constraints}{incident_deliverables}",
    "Estimate, with a derivation, the probability that two of our 2^40 generated order ids "
    "collide when ids are 64-bit values from a truncated SHA-256 of (tenant, timestamp, "
    "counter), and compare it with random 64-bit ids. Then analyze whether a collision could "
    "cross tenants, what the consequence would be for billing, and whether the scheme is safe "
    "for the next five years of growth at 3x per year. Give bounds, not just a simulation."
    "{analysis_deliverables}",
)

_PROFILES: Final[dict[Category, _Profile]] = {
    "routine": _Profile(_ROUTINE, _weighted_sla(0.0, 0.2), _attached(0.3, 200, 1_500)),
    "architectural": _Profile(
        tuple(template + "{design_constraints}" for template in _ARCHITECTURAL),
        _weighted_sla(0.15, 0.1),
        _attached(0.5, 2_000, 12_000),
    ),
    "research": _Profile(_RESEARCH, _weighted_sla(0.3, 0.0), _attached(0.85, 30_000, 120_000)),
}
