"""`parjanya eval`'s engine: every scorer over the same outcomes, on the same terms.

A scorer here is a function from outcomes to scores (higher = harder). The reference scorers
frame every result: `random` is chance, `length` is what a scorer must beat to be worth its
features, and `oracle` (knows the outcome) is the best any router could do.

Never scored in-sample: a learned model whose training sources overlap the data is refitted in
folds grouped by source (`learn.fit.cross_validated`) and its row is named `... (grouped CV)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict

from parjanya.classify.dimensions import FeatureScorer
from parjanya.classify.features import measure_text
from parjanya.classify.learned import LearnedModel, LearnedScorer
from parjanya.classify.scorer import HeuristicScorer
from parjanya.config import ParjanyaConfig
from parjanya.learn.fit import cross_validated, options_of
from parjanya.learn.metrics import Curve, auroc, cost_quality_curve, strong_share_for
from parjanya.learn.outcomes import Outcome, trained_sources
from parjanya.queues import Tier

__all__ = ["NamedScorer", "ScorerReport", "evaluate", "reference_scorers", "tier_cost"]

SEED = 0
TARGET = 0.95
ScoreFn = Callable[[Sequence[Outcome]], np.ndarray]


@dataclass(frozen=True)
class NamedScorer:
    name: str
    scores: ScoreFn
    note: str = ""


class ScorerReport(BaseModel):
    """One scorer's line of the table; `curve` is kept for plotting and calibration."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    scorer: str
    data: str
    rows: int
    auroc: float
    strong_share_at_95: float
    saving_at_95: float
    cost_per_1k_at_95: float
    cost_per_1k_all_strong: float
    quality_at_95: float
    curve: Curve

    def closing_line(self) -> str:
        return (
            f"eval scorer={self.scorer} auroc={_fmt(self.auroc)} "
            f"strong_share_at_95={self.strong_share_at_95:.3f} "
            f"saving_at_95={self.saving_at_95:.3f} data={self.data}"
        )


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.3f}"


def tier_cost(outcome: Outcome, tier: Tier, config: ParjanyaConfig) -> float:
    """What the outcome says the tier cost, else its primary deployment's price for this prompt."""
    result = outcome.results.get(tier)
    if result is not None and result.cost_usd is not None:
        return result.cost_usd
    deployment = config.tiers[tier].deployments[0]
    tokens_in = max(1, len(outcome.text) // 4)
    return deployment.cost_usd(tokens_in, config.routing.expected_output_tokens)


def heuristic_scorer(
    config: ParjanyaConfig, dimensions: FeatureScorer | None = None, label: str = "heuristic"
) -> NamedScorer:
    """The seed's weighted sum over the given dimensions (default: the hand-set table)."""
    scorer = HeuristicScorer(config.routing.weights, dimensions)

    def scores(outcomes: Sequence[Outcome]) -> np.ndarray:
        return np.array([scorer.assess(o.text, measure_text(o.text))[1] for o in outcomes])

    return NamedScorer(f"{label}:{scorer.name}", scores)


def learned_scorer(model: LearnedModel, label: str = "learned") -> NamedScorer:
    """Scores with the model, or out of fold when the data shares a source with its training."""
    trained = trained_sources(model.trained_on)
    scorer = LearnedScorer(model)

    def scores(outcomes: Sequence[Outcome]) -> np.ndarray:
        if trained & {o.source for o in outcomes}:
            folds = cross_validated(outcomes, options_of(model))
            return np.array([scorer.to_score(p) for p in folds])
        return np.array([scorer.score(o.text) for o in outcomes])

    return NamedScorer(
        f"{label}:{model.name}",
        scores,
        " (refitted in folds grouped by source where the data shares its training sources)",
    )


def reference_scorers() -> list[NamedScorer]:
    def length(outcomes: Sequence[Outcome]) -> np.ndarray:
        return np.array([float(len(o.text)) for o in outcomes])

    def random(outcomes: Sequence[Outcome]) -> np.ndarray:
        return np.random.default_rng(SEED).random(len(outcomes))

    def oracle(outcomes: Sequence[Outcome]) -> np.ndarray:
        # needs-strong first, then by how much the strong tier gains: the best possible order.
        return np.array([(o.strong.quality - o.weak.quality) for o in outcomes])

    return [
        NamedScorer("length", length),
        NamedScorer("random", random),
        NamedScorer("oracle", oracle),
    ]


def evaluate(
    outcomes: Sequence[Outcome],
    scorers: Sequence[NamedScorer],
    config: ParjanyaConfig,
    data: str,
    target: float = TARGET,
) -> list[ScorerReport]:
    labels = [o.needs_strong for o in outcomes]
    weak_cost = [tier_cost(o, o.weak_tier, config) for o in outcomes]
    strong_cost = [tier_cost(o, o.strong_tier, config) for o in outcomes]
    weak_q = [o.weak.quality for o in outcomes]
    strong_q = [o.strong.quality for o in outcomes]
    reports = []
    for scorer in scorers:
        scores = scorer.scores(outcomes)
        curve = cost_quality_curve(scores, weak_q, strong_q, weak_cost, strong_cost)
        share, saving = strong_share_for(curve, target)
        k = curve.index_for(target)
        n = max(len(outcomes), 1)
        reports.append(
            ScorerReport(
                scorer=scorer.name,
                data=data,
                rows=len(outcomes),
                auroc=auroc(labels, scores),
                strong_share_at_95=share,
                saving_at_95=saving,
                cost_per_1k_at_95=float(curve.cost[k]) / n * 1000,
                cost_per_1k_all_strong=curve.all_strong_cost / n * 1000,
                quality_at_95=float(curve.quality[k]),
                curve=curve,
            )
        )
    return reports
