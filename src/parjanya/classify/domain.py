"""Name the subject of a request: one of a small fixed set, "chat" when nothing stands out.

The domain is recorded with the routing decision (dashboards, audits, per-domain thresholds later);
it does not change the tier by itself, so a wrong guess costs a mislabelled chart, not a bad
route. Evidence is the lexicon hits measured once in `features.py` plus structure a word count
misses: code blocks say "code" louder than the word "function" does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from parjanya.classify.features import TextFeatures
from parjanya.classify.lexicon import DOMAINS, FALLBACK_DOMAIN

#: Least evidence (word hits plus structural bonus) for a domain to be named at all.
MIN_EVIDENCE = 1.0


class StructuralHint(NamedTuple):
    domain: str
    measure: Callable[[TextFeatures], float]
    weight: float


#: Non-lexical evidence, per domain: each unit of `measure` counts as `weight` word hits.
STRUCTURAL_HINTS: tuple[StructuralHint, ...] = (
    StructuralHint("code", lambda f: f.code_lines + 2 * f.code_blocks, 0.5),
    StructuralHint("code", lambda f: f.file_refs, 0.5),
    StructuralHint("math", lambda f: f.math_symbols, 1.0),
)


def domain_scores(features: TextFeatures) -> dict[str, float]:
    """Evidence per domain: lexicon hits plus weighted structural hints."""
    scores = dict.fromkeys(DOMAINS, 0.0)
    for domain, hits in features.domain_terms:
        scores[domain] += hits
    for hint in STRUCTURAL_HINTS:
        scores[hint.domain] += hint.weight * hint.measure(features)
    return scores


def detect_domain(features: TextFeatures) -> str:
    """The best-supported domain; ties go to the one listed first (the riskier one)."""
    scores = domain_scores(features)
    best = max(DOMAINS, key=scores.__getitem__)
    return best if scores[best] >= MIN_EVIDENCE else FALLBACK_DOMAIN
