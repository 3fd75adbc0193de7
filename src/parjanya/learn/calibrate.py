"""Threshold calibration: the cut points that reach a quality target at the lowest cost.

As RouteLLM's `calibrate_threshold` does for two models, but for Parjanya's three tiers and on the
1-10 score the thresholds cut. With outcomes for all three tiers, every pair of candidate cuts
(score quantiles) is tried and the cheapest pair that keeps `target` x all-high quality wins. With
two tiers only (public data: a weak and a strong model), the mid tier's quality is unknown, so
the rule `learn/fit.py` uses for a model's knots applies: `low` at the cut that keeps `target`,
`mid` at the cut that keeps `target - 0.05`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from parjanya.config import ParjanyaConfig
from parjanya.learn.evaluate import tier_cost
from parjanya.learn.metrics import Scores, cost_quality_curve
from parjanya.learn.outcomes import Outcome
from parjanya.queues import TIERS

__all__ = ["Calibration", "calibrate"]

CANDIDATES = 40
MID_STEP = 0.05


class Calibration(BaseModel):
    model_config = ConfigDict(frozen=True)

    low: float
    mid: float
    quality: float  # the fraction of all-strong quality reached on this data
    saving: float  # against sending everything to the top tier
    share: dict[str, float]  # share of prompts per tier
    method: str


def _clamp(value: float) -> float:
    return min(9.99, max(1.0, value)) if math.isfinite(value) else 9.99


def _between(cut: np.ndarray, k: int) -> float:
    """A threshold halfway between the k-th hardest prompt (sent up) and the next (kept low)."""
    if k == 0:
        return 9.99  # nothing needs to go up
    below = float(cut[k + 1]) if k + 1 < len(cut) else float(cut[k]) - 1.0
    return round(_clamp((float(cut[k]) + below) / 2), 3)


def calibrate(
    outcomes: Sequence[Outcome], scores: Scores, config: ParjanyaConfig, target: float
) -> Calibration:
    s = np.asarray(scores, dtype=float)
    if all(len(o.results) == len(TIERS) for o in outcomes):
        return _three_tiers(outcomes, s, config, target)
    return _two_tiers(outcomes, s, config, target)


def _two_tiers(
    outcomes: Sequence[Outcome], s: np.ndarray, config: ParjanyaConfig, target: float
) -> Calibration:
    weak_q = [o.weak.quality for o in outcomes]
    strong_q = [o.strong.quality for o in outcomes]
    weak_c = [tier_cost(o, o.weak_tier, config) for o in outcomes]
    strong_c = [tier_cost(o, o.strong_tier, config) for o in outcomes]
    curve = cost_quality_curve(s, weak_q, strong_q, weak_c, strong_c)
    k = curve.index_for(target)
    low = _between(curve.cut, k)
    mid = max(_between(curve.cut, curve.index_for(target - MID_STEP)), low + 0.01)
    n = max(len(outcomes), 1)
    return Calibration(
        low=low,
        mid=round(min(mid, 10.0), 3),
        quality=float(curve.quality[k]) / max(curve.all_strong_quality, 1e-12),
        saving=1.0 - float(curve.cost[k]) / max(curve.all_strong_cost, 1e-12),
        share={"low": 1 - k / n, "above_low": k / n},
        method="two tiers: low keeps the target, mid keeps the target - 0.05",
    )


def _three_tiers(
    outcomes: Sequence[Outcome], s: np.ndarray, config: ParjanyaConfig, target: float
) -> Calibration:
    quality = np.array([[o.results[t].quality for t in TIERS] for o in outcomes])
    cost = np.array([[tier_cost(o, t, config) for t in TIERS] for o in outcomes])
    goal = target * quality[:, 2].mean()
    cuts = np.unique(np.quantile(s, np.linspace(0, 1, CANDIDATES + 1)))
    best: tuple[float, float, float, float, np.ndarray] | None = None
    for a in cuts:
        for b in cuts[cuts > a]:
            tier = np.where(s <= a, 0, np.where(s <= b, 1, 2))
            rows = np.arange(len(s))
            q, c = quality[rows, tier].mean(), cost[rows, tier].sum()
            if q >= goal and (best is None or c < best[2]):
                best = (float(a), float(b), float(c), float(q), tier)
    if best is None:  # nothing below all-high reaches the goal: everything goes high
        a = b = float(s.min()) - 1.0
        tier = np.full(len(s), 2)
        best = (a, b + 0.01, float(cost[:, 2].sum()), float(quality[:, 2].mean()), tier)
    low, mid, total, q, tier = best
    return Calibration(
        low=round(_clamp(low), 3),
        mid=round(max(_clamp(mid), _clamp(low) + 0.01), 3),
        quality=q / max(quality[:, 2].mean(), 1e-12),
        saving=1.0 - total / max(cost[:, 2].sum(), 1e-12),
        share={t: float((tier == i).mean()) for i, t in enumerate(TIERS)},
        method="three tiers: cheapest pair of cuts that keeps the target",
    )
