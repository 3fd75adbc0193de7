"""Word lists the feature pass counts against, kept apart from the code that counts.

A word alone never decides a route: `features.py` turns these hits into counts and densities, and
`dimensions.py` maps those through calibration curves alongside structural measurements (steps,
code, length). Words are listed lowercase; adding one here is the whole change.
Inflections are listed explicitly because a stemmer would cost more than the lookup it feeds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

# -- feature categories ---------------------------------------------------------------------------

VAGUE = "vague"
CONSTRAINT = "constraint"
CONDITIONAL = "conditional"
REASONING = "reasoning"
TRADEOFF = "tradeoff"
EXPLAIN = "explain"
SEQUENCE = "sequence"
ACTION = "action"
OPEN_SCOPE = "open_scope"
RISK = "risk"
DESTRUCTIVE = "destructive"
JSON = "json"
#: Every feature category, so a count that saw no hits reads as 0 rather than a missing key.
CATEGORIES: tuple[str, ...] = (
    VAGUE, CONSTRAINT, CONDITIONAL, REASONING, TRADEOFF, EXPLAIN, SEQUENCE, ACTION, OPEN_SCOPE,
    RISK, DESTRUCTIVE, JSON,
)  # fmt: skip

# A word may sit in several categories on purpose: "compare" asks for an answer (action), for
# weighing options (trade-off) and for analysis (reasoning).

_FEATURE_WORDS: dict[str, str] = {
    VAGUE: """something somehow maybe etc stuff better improve improved improving things thing
        whatever perhaps nicer cleaner somewhere somewhat anything possibly kinda sorta misc
        general generally fine nice various""",
    CONSTRAINT: """must should never always without only require requires required requirement
        requirements ensure ensuring guarantee guarantees exactly strictly limit limits budget
        deadline sla cannot within preserve preserving maintain idempotent atomic atomically
        bounded maximum minimum constraint constraints mandatory backward-compatible compatible
        p99 p95 latency throughput""",
    CONDITIONAL: "if unless when otherwise else whenever whether provided",
    # Demands for analysis, design, proof or diagnosis, and the vocabulary of design problems
    # (boundaries, failure modes, consistency): what a request asks the model to think through.
    REASONING: """why prove proof proofs derive derivation analyze analyse analysis design
        designing architect architecture debug debugging diagnose investigate investigation
        reason reasoning justify evaluate assess explain compare optimize optimise complexity
        invariant invariants correctness deadlock deadlocks race races bottleneck bottlenecks
        hypothesis hypotheses root-cause consistency formally rigorous rigorously asymptotic
        amortized lemma theorem induction counterexample implications strategy modeling
        reconcile diagnosis tradeoff tradeoffs trade-off trade-offs linearizable linearizability
        convergence interface interfaces boundary boundaries migrate migration scalability
        scaling partition partitioning sharding failure failures risks compatibility versioning
        invalidation isolation semantics guarantee guarantees coordination concurrency
        concurrent ordering decide determine evolution durability idempotency mitigate
        mitigation restructure reorganize reorganise decouple decoupling probability
        probabilities bound bounds estimate deterministic determinism consequence consequences
        orderings plan planning propose proposal structure efficiently performance scalable""",
    TRADEOFF: """tradeoff tradeoffs trade-off trade-offs versus vs pros cons alternatives
        alternative option options downside downsides balance weigh compare comparing
        cost-benefit""",
    EXPLAIN: "why how",
    SEQUENCE: "first then next finally afterwards subsequently second third lastly step steps",
    # Imperative verbs: each distinct one is one more thing the answer must contain.
    ACTION: """write add rename fix implement create design explain list compare refactor
        convert update remove document propose plan describe identify estimate produce outline
        generate build migrate prove derive summarize recommend draft review test benchmark
        measure investigate find determine analyze provide suggest sketch specify define
        reproduce validate verify quantify diagnose justify evaluate assess choose decide select
        consider restructure reorganize split extract translate sort bump replace change check
        reconstruct repair correct compute calculate audit rotate detect optimize show give""",
    # Unknowns (intermittent, unexplained) and open choices (propose, choose, which approach): the
    # model has to decide what the answer even looks like, which is what "ambiguity" costs.
    OPEN_SCOPE: """investigate explore unknown unclear intermittent intermittently sometimes
        occasionally sporadic sporadically flaky randomly nondeterministic nondeterminism
        unexplained mysterious strange weird brainstorm unsure hypothesis hypotheses novel
        design propose plan choose pick recommend approach approaches options alternatives
        strategy suggest open-ended""",
    RISK: """production prod outage incident incidents downtime customer customers payment
        payments billing invoice invoices financial money legal contract compliance gdpr hipaa
        pci sox audit patient patients medical clinical dosage security vulnerability
        vulnerabilities exploit cve authentication authorization encryption credentials secrets
        privilege injection breach pii regulatory liability safety fraud ledger consistency
        durability replication failover charge charged charges refund refunds safe unsafe dose
        doses erasure""",
    DESTRUCTIVE: """delete deleting deletion erasure drop truncate purge wipe destroy
        irreversible rollback data-loss corruption corrupt corrupted overwrite force-push lost
        duplicate duplicated""",
    JSON: "json jsonl",
}

#: Multi-word cues, counted on the lowercased text (see `PHRASES`).
_FEATURE_PHRASES: dict[str, str | tuple[str, ...]] = {
    "at most": CONSTRAINT,
    "at least": CONSTRAINT,
    "no more than": CONSTRAINT,
    "zero downtime": CONSTRAINT,
    "no downtime": CONSTRAINT,
    "in case": CONDITIONAL,
    "root cause": (REASONING, OPEN_SCOPE),  # a diagnosis to make, whose answer is not known yet
    "step by step": SEQUENCE,
    "after that": SEQUENCE,
    "not sure": OPEN_SCOPE,
    "should we": OPEN_SCOPE,  # a decision still to be made
    "which approach": OPEN_SCOPE,
    "best way": OPEN_SCOPE,
    "figure out": OPEN_SCOPE,
    "any ideas": OPEN_SCOPE,
    "no idea": OPEN_SCOPE,
    "kind of": VAGUE,
    "sort of": VAGUE,
    "data loss": DESTRUCTIVE,
    "personal data": RISK,
    "drop table": DESTRUCTIVE,
    "rm -rf": DESTRUCTIVE,
    "on the other hand": TRADEOFF,
    "upper bound": REASONING,
    "lower bound": REASONING,
    "worst case": REASONING,
}

# -- domains --------------------------------------------------------------------------------------

#: Order matters only to break ties: the riskier domain wins, so its policy is not missed.
DOMAINS: tuple[str, ...] = (
    "security",
    "legal",
    "medical",
    "finance",
    "math",
    "data",
    "code",
    "analysis",
    "writing",
)
FALLBACK_DOMAIN = "chat"

_DOMAIN_WORDS: dict[str, str] = {
    "security": """vulnerability vulnerabilities exploit cve xss csrf injection password
        passwords credentials tls ssl firewall attack attacker threat malware privilege
        encryption encrypt authentication authorization oauth jwt secrets pentest sanitize""",
    "legal": """contract contracts clause clauses liability lawsuit gdpr legal law laws
        regulation nda attorney court statute licensing indemnify indemnification jurisdiction
        tort""",
    "medical": """patient patients diagnosis symptom symptoms dosage drug drugs clinical medical
        treatment disease hipaa prescription doctor physician dose doses""",
    "finance": """payment payments invoice invoices billing revenue tax taxes ledger accounting
        stock stocks portfolio loan interest bank banking financial pricing refund refunds
        transaction transactions currency""",
    "math": """prove proof theorem lemma integral derivative equation equations matrix
        probability polynomial asymptotic recurrence induction eigenvalue modulo prime primes
        combinatorics amortized logarithmic""",
    "data": """sql query queries database databases table tables schema etl csv parquet
        warehouse dataframe pandas spark postgres postgresql mysql sqlite index indexes kafka
        dataset datasets""",
    "code": """function functions class classes method methods variable variables bug bugs
        compile python typescript javascript java rust golang api endpoint endpoints refactor
        module modules library regex docstring docstrings repo git commit exception async thread
        threads lint import package script code codebase service services test tests pytest
        unittest ci""",
    "analysis": """analyze analysis report metrics trend trends evaluate kpi kpis insight
        insights forecast survey chart dashboard cohort""",
    "writing": """essay blog post story poem paragraph tone rewrite proofread grammar headline
        letter article copywriting narrative prose""",
}

_DOMAIN_PHRASES: dict[str, str] = {
    "stack trace": "code",
    "pull request": "code",
    "unit test": "code",
    "big o": "math",
    "personal data": "legal",
    "terms of service": "legal",
    "cover letter": "writing",
    "blog post": "writing",
}

DOMAIN_PREFIX = "domain:"


Phrase = tuple[re.Pattern[str], tuple[str, ...]]  # (" phrase" pattern, categories)


def _build_table(
    feature_words: Mapping[str, str], domain_words: Mapping[str, str]
) -> dict[str, tuple[str, ...]]:
    table: dict[str, list[str]] = {}
    for category, text in feature_words.items():
        for word in text.split():
            table.setdefault(word, []).append(category)
    for domain, text in domain_words.items():
        for word in text.split():
            table.setdefault(word, []).append(DOMAIN_PREFIX + domain)
    return {
        form: tuple(dict.fromkeys(tags))
        for word, tags in table.items()
        for form in (word, word.capitalize(), word.upper())
    }


def _phrases_by_first_word() -> dict[str, tuple[Phrase, ...]]:
    tags: dict[str, list[str]] = {}
    for phrase, categories in _FEATURE_PHRASES.items():
        tags[phrase] = [categories] if isinstance(categories, str) else list(categories)
    for phrase, domain in _DOMAIN_PHRASES.items():
        tags.setdefault(phrase, []).append(DOMAIN_PREFIX + domain)
    grouped: dict[str, list[Phrase]] = {}
    for phrase, phrase_tags in tags.items():
        # leading space: word start and a literal prefix the engine scans for quickly
        pattern = re.compile(" " + re.escape(phrase) + r"(?![\w-])")
        grouped.setdefault(phrase.split()[0], []).append((pattern, tuple(phrase_tags)))
    return {first: tuple(entries) for first, entries in grouped.items()}


#: word -> the categories it counts toward (feature names and `domain:<name>` tags). Each word is
#: listed lowercase, Capitalized and UPPER so the text need not be lowercased word by word.
WORD_TAGS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    _build_table(_FEATURE_WORDS, _DOMAIN_WORDS)
)
#: Phrases grouped by their (lowercase) first word. A phrase is searched for only when its first
#: word occurs in the text, found with one set intersection against `PHRASE_FIRST_WORDS`; then it
#: is counted on the text lowercased, whitespace-normalised and padded with a leading space. Most
#: phrases are never searched at all.
PHRASES: Mapping[str, tuple[Phrase, ...]] = MappingProxyType(_phrases_by_first_word())
#: Every spelling (lower, Capitalized, UPPER) of a phrase's first word -> its lowercase form.
PHRASE_FIRST_WORDS: Mapping[str, str] = MappingProxyType(
    {form: first for first in PHRASES for form in (first, first.capitalize(), first.upper())}
)
#: Every tag at zero: the starting point of a count, so counting never checks for a missing key.
NO_TAGS: Mapping[str, int] = MappingProxyType(
    dict.fromkeys([*CATEGORIES, *(DOMAIN_PREFIX + domain for domain in DOMAINS)], 0)
)
