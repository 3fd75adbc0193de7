"""The demo workload's prompt templates, one tuple per category (filled in by `workload.py`).

Kept apart from the generator so the generator reads in one screen and the templates can grow:
each `{name}` is a filler `workload.py` draws (file paths, function names, log excerpts, lists of
constraints and deliverables), and architectural templates get design constraints appended there.
"""

from __future__ import annotations

from typing import Final

ROUTINE: Final[tuple[str, ...]] = (
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

ARCHITECTURAL: Final[tuple[str, ...]] = (
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

RESEARCH: Final[tuple[str, ...]] = (
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
