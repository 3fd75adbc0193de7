"""How well a scorer routes: AUROC, the cost-quality curve, the strong share a target needs.

All metrics take the same inputs: per prompt a score (higher = harder, so sent up first), the
weak and strong tiers' quality and the cost of each. "Routing at share s" sends the s hardest
prompts by score to the strong tier and the rest to the weak one, as RouteLLM's evaluation does;
the curve over every s is what `--plot` draws and what calibration searches.

"Keep 95 % of all-strong quality" is read literally: routed quality >= 0.95 x the quality of
sending everything to the strong tier. When the weak tier alone already reaches that, the share
needed is 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

__all__ = ["Curve", "auroc", "cost_quality_curve", "strong_share_for"]


Scores = Sequence[float] | np.ndarray


def auroc(labels: Sequence[bool], scores: Scores) -> float:
    """Area under the ROC curve for "needs the strong tier"; NaN when one class is missing."""
    y = np.asarray(labels, dtype=bool)
    if y.all() or not y.any():
        return math.nan
    return float(roc_auc_score(y, np.asarray(scores, dtype=float)))


@dataclass(frozen=True)
class Curve:
    """Routing at every share: index k sends the k hardest prompts (by score) to the strong tier."""

    share: np.ndarray  # k / n, from 0 to 1
    quality: np.ndarray  # mean quality when routing at that share
    cost: np.ndarray  # total cost at that share
    cut: np.ndarray  # the score at or above which a prompt goes strong (inf at k = 0)

    @property
    def all_strong_quality(self) -> float:
        return float(self.quality[-1])

    @property
    def all_strong_cost(self) -> float:
        return float(self.cost[-1])

    def index_for(self, target: float) -> int:
        """The smallest k whose quality reaches `target` x all-strong quality."""
        goal = target * self.all_strong_quality - 1e-12
        reached = np.nonzero(self.quality >= goal)[0]
        return int(reached[0]) if reached.size else len(self.quality) - 1


def cost_quality_curve(
    scores: Scores,
    weak_quality: Sequence[float],
    strong_quality: Sequence[float],
    weak_cost: Sequence[float],
    strong_cost: Sequence[float],
) -> Curve:
    """The curve for one scorer. Ties in score are broken by input order (stable sort)."""
    s = np.asarray(scores, dtype=float)
    order = np.argsort(-s, kind="stable")
    wq, sq = np.asarray(weak_quality, float)[order], np.asarray(strong_quality, float)[order]
    wc, sc = np.asarray(weak_cost, float)[order], np.asarray(strong_cost, float)[order]
    n = len(s)
    gain_q = np.concatenate([[0.0], np.cumsum(sq - wq)])
    gain_c = np.concatenate([[0.0], np.cumsum(sc - wc)])
    quality = (wq.sum() + gain_q) / max(n, 1)
    cost = wc.sum() + gain_c
    cut = np.concatenate([[math.inf], s[order]])
    return Curve(share=np.arange(n + 1) / max(n, 1), quality=quality, cost=cost, cut=cut)


def strong_share_for(curve: Curve, target: float) -> tuple[float, float]:
    """(share of strong calls, saving against all-strong) at the target quality fraction."""
    k = curve.index_for(target)
    all_cost = curve.all_strong_cost
    saving = 1.0 - float(curve.cost[k]) / all_cost if all_cost > 0 else 0.0
    return float(curve.share[k]), saving
