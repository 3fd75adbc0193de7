"""The classifier: request in, routing decision out. Pure, deterministic, no broker, no network.

`features` measures the text once (PII kinds included, since the risk dimension reads them), a
`Scorer` turns the measurements into five dimensions, `domain` names the subject, and `policy`
applies thresholds, tier bounds, SLA, context windows and budget. Each stage is its own module;
this one only wires them in that order.
"""

from __future__ import annotations

from parjanya.classify.dimensions import FeatureScorer
from parjanya.classify.domain import detect_domain
from parjanya.classify.features import TextFeatures, measure
from parjanya.classify.pii import detect_pii, redact_pii
from parjanya.classify.policy import PolicyRejection, complexity_score, decide
from parjanya.classify.scorer import Scorer
from parjanya.config import ParjanyaConfig
from parjanya.schema import Complexity, RoutingDecision, TaskRequest

__all__ = [
    "DEFAULT_SCORER",
    "FeatureScorer",
    "PolicyRejection",
    "Scorer",
    "TextFeatures",
    "classify",
    "detect_pii",
    "measure",
    "redact_pii",
]

DEFAULT_SCORER: Scorer = FeatureScorer()


def classify(
    request: TaskRequest, config: ParjanyaConfig, scorer: Scorer | None = None
) -> RoutingDecision:
    """Route one request. Raises `PolicyRejection` when no tier satisfies its policy."""
    scorer = scorer or DEFAULT_SCORER
    features = measure(request)
    dimensions = scorer.dimensions(features)
    complexity = Complexity(
        score=complexity_score(dimensions, config.routing.weights),
        dimensions=dimensions,
        domain=detect_domain(features),
        pii=list(features.pii),
        scorer=scorer.name,
    )
    return decide(complexity, request, config, features.estimated_tokens)
