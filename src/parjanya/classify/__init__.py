"""The classifier: request in, routing decision out. Pure, deterministic, no broker, no network.

`features` measures the text once (PII kinds included, since the risk dimension reads them), the
calibration table (`dimensions`) turns the measurements into the five dimensions every decision
records, a `Scorer` turns the request into the 1-10 score (the learned model by default, or the
seed's weighted sum: `scorer.py`), `domain` names the subject, and `policy` applies thresholds,
tier bounds, SLA, context windows and budget. Each stage is its own module; this one only wires
them in that order.
"""

from __future__ import annotations

from parjanya.classify.dimensions import FeatureScorer
from parjanya.classify.domain import detect_domain
from parjanya.classify.features import TextFeatures, measure, measure_text, request_text
from parjanya.classify.pii import detect_pii, redact_pii
from parjanya.classify.policy import RULES, PolicyRejection, Rule, decide
from parjanya.classify.scorer import HeuristicScorer, Scorer, build_scorer
from parjanya.config import ParjanyaConfig
from parjanya.schema import Complexity, RoutingDecision, TaskRequest

__all__ = [
    "RULES",
    "FeatureScorer",
    "HeuristicScorer",
    "PolicyRejection",
    "Rule",
    "Scorer",
    "TextFeatures",
    "build_scorer",
    "classify",
    "detect_pii",
    "measure",
    "measure_text",
    "redact_pii",
]


def classify(
    request: TaskRequest,
    config: ParjanyaConfig,
    scorer: Scorer | None = None,
    rules: tuple[Rule, ...] = RULES,
) -> RoutingDecision:
    """Route one request. Raises `PolicyRejection` when no tier satisfies its policy.

    Pass the scorer a process built once (`build_scorer(config.routing)`); without one it is
    built here, which reads a model file: fine for one call, wasteful in a loop.
    """
    scorer = scorer or build_scorer(config.routing)
    features = measure(request)
    dimensions, score = scorer.assess(request_text(request), features)
    complexity = Complexity(
        score=score,
        dimensions=dimensions,
        domain=detect_domain(features),
        pii=list(features.pii),
        scorer=scorer.name,
    )
    return decide(complexity, request, config, features.estimated_tokens, rules)
