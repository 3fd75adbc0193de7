"""Fitting the heuristic: the seed's five dimensions and weights, with term points from outcome data.

The hand-set calibration table (`classify/dimensions.py`, "features-v1") is a prior: each term's
points are a reviewer's claim about how much that measurement says. This procedure lets outcome
data revise the claims it can speak to, and only those:

1. Every term's curve is evaluated on every training prompt (its output in [0, 1]).
2. A term is *supported* when at least `min_support` of the prompts activate it (output > 0).
   Unsupported terms keep their hand-set points: the data is silent about them (public exam
   questions carry no stack traces or numbered plans), and silence is not evidence of zero.
3. The prior score's slope on "the low tier failed" is measured (least squares). Then each
   supported term's contribution gets its own slope, fitted jointly by bounded least squares
   (scipy's `lsq_linear`) within `TRUST` times the common slope, with the unsupported terms
   held at theirs. A term's new points are its hand-set points times (its slope / the common
   slope): the data can move a term by a quarter either way, never remove it or flip its sign.
4. The multipliers are then scaled together so the supported terms keep the total weighted points
   they had: the data moves points between terms, and the scale the thresholds were set on stays.

The curves' shapes (where each knot sits) stay as written; their heights are what is fitted.
The result is a small JSON file of points per term, loaded by `routing.scorer: heuristic`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.optimize import lsq_linear

from parjanya.classify.dimensions import CALIBRATION, Term
from parjanya.classify.features import measure_text
from parjanya.classify.heuristic_points import HeuristicPoints
from parjanya.config import Weights
from parjanya.learn.outcomes import Outcome

__all__ = ["MIN_SUPPORT", "TRUST", "fit_points"]

#: A term the data activates on fewer prompts than this keeps its hand-set points.
MIN_SUPPORT = 0.05
#: How far the data may move a supported term's points: from three quarters to five quarters of
#: the hand-set value (before the rescaling of step 4). A trust region, not a free fit: one benchmark family is weak evidence about
#: agent tasks, and the seed's workload must still route as its authors meant.
TRUST = (0.75, 1.25)


def fit_points(
    outcomes: Sequence[Outcome],
    *,
    name: str = "features-v2",
    weights: Weights | None = None,
    calibration: Mapping[str, tuple[Term, ...]] = CALIBRATION,
    min_support: float = MIN_SUPPORT,
    trust: tuple[float, float] = TRUST,
) -> HeuristicPoints:
    weights = weights or Weights()
    terms = [(dim, term) for dim, dim_terms in calibration.items() for term in dim_terms]
    features = [measure_text(o.text) for o in outcomes]
    outputs = np.array([[t.curve(t.measure(f)) for _, t in terms] for f in features])
    support = (outputs > 0).mean(axis=0)
    supported = np.nonzero(support >= min_support)[0]
    points = {dim: {t.label: t.points for t in dim_terms} for dim, dim_terms in calibration.items()}
    # Each term's weighted contribution to the score under the prior points.
    prior = outputs * np.array([getattr(weights, dim) * t.points for dim, t in terms])
    target = np.array([1.0 - o.weak.quality for o in outcomes])
    slope = _slope(prior.sum(axis=1), target)
    if supported.size and slope > 0:
        design = np.column_stack([np.ones(len(outcomes)), prior[:, supported]])
        low, high = trust
        bounds = (
            [-np.inf] + [low * slope] * supported.size,
            [np.inf] + [high * slope] * supported.size,
        )
        silent = prior[:, _silent(supported, len(terms))].sum(axis=1) * slope
        multipliers = lsq_linear(design, target - silent, bounds=bounds).x[1:] / slope
        # Keep the supported terms' total weighted points: the data moves points between
        # terms, and the scale the thresholds were set on stays where it was.
        budget = np.array([getattr(weights, terms[i][0]) * terms[i][1].points for i in supported])
        multipliers *= budget.sum() / float(budget @ multipliers)
        for index, multiplier in zip(supported, multipliers, strict=True):
            dim, term = terms[index]
            points[dim][term.label] = round(float(term.points * multiplier), 3)
    return HeuristicPoints(
        name=name,
        points=points,
        support={
            f"{d}/{t.label}": round(float(v), 4) for (d, t), v in zip(terms, support, strict=True)
        },
        trained_on={
            "rows": len(outcomes),
            "sources": sorted({o.source for o in outcomes}),
            "min_support": min_support,
            "trust": list(trust),
        },
    )


def _slope(score: np.ndarray, target: np.ndarray) -> float:
    """How much failure rises per point of the prior score (least squares)."""
    centred = score - score.mean()
    denominator = float(centred @ centred)
    return float(centred @ (target - target.mean())) / denominator if denominator else 0.0


def _silent(supported: np.ndarray, count: int) -> np.ndarray:
    mask = np.ones(count, dtype=bool)
    mask[supported] = False
    return mask
