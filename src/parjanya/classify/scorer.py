"""The one interface a complexity scorer implements, and the choice of scorer, made once.

Every decision records the five dimensions (measured by the heuristic's calibration table, so a
route can always be explained in the seed's terms); the scorer turns a request into the 1-10
score the thresholds cut. Two kinds ship:

- `HeuristicScorer`: the seed's weighted sum of the five dimensions. Its term points are the
  hand-set table ("features-v1") unless `routing.heuristic_points` names points fitted to outcome
  data (`parjanya train --heuristic`, `learn/heuristic.py`). The bundled fitted points
  ("features-v2", fitted to the public MMLU outcomes) are not the default: they gain about 0.01
  AUROC on held-out public data but move hand-written architectural agent tasks from mid to low,
  which the seed's workload forbids (README, "Routing quality").
- `LearnedScorer`: a model fitted to routing outcomes (`parjanya train`); the bundled one was
  fitted to public MMLU outcomes and measures best on held-out public data (README, "Routing
  quality"), so it is the default.

`build_scorer` reads `routing.scorer` and `routing.scorer_model` once; workers call it at start
and pass the result to `classify`, so a model file is read once per process.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Protocol, runtime_checkable

from parjanya.classify.dimensions import FeatureScorer
from parjanya.classify.features import TextFeatures
from parjanya.classify.heuristic_points import HeuristicPoints, apply_points, load_points
from parjanya.classify.learned import LearnedModel, LearnedScorer, load_model
from parjanya.classify.policy import complexity_score
from parjanya.config import RoutingConfig, Weights
from parjanya.schema import DimensionScores

__all__ = [
    "BUNDLED_MODEL",
    "BUNDLED_POINTS",
    "HeuristicScorer",
    "ModelScorer",
    "Scorer",
    "build_scorer",
    "bundled_model",
    "bundled_points",
    "configured_dimensions",
    "fitted_dimensions",
]

#: The model `routing.scorer: learned` uses when `routing.scorer_model` is not set.
BUNDLED_MODEL = "difficulty-mmlu-v1.json"
#: Term points fitted to the public MMLU outcomes, shipped for `parjanya eval` and as an option.
BUNDLED_POINTS = "heuristic-mmlu-v2.json"


@runtime_checkable
class Scorer(Protocol):
    """Text and its measured features in; the five dimensions and the 1-10 score out.

    `name` is recorded with every decision for audits.
    """

    name: str

    def assess(self, text: str, features: TextFeatures) -> tuple[DimensionScores, float]: ...


class HeuristicScorer:
    """The seed's formula: the configured weights over the five dimensions."""

    def __init__(
        self, weights: Weights | None = None, dimensions: FeatureScorer | None = None
    ) -> None:
        self._weights = weights or Weights()
        self._dimensions = dimensions or FeatureScorer()
        self.name = self._dimensions.name

    def assess(self, text: str, features: TextFeatures) -> tuple[DimensionScores, float]:
        dimensions = self._dimensions.dimensions(features)
        return dimensions, complexity_score(dimensions, self._weights)


class ModelScorer:
    """Adapts a `LearnedScorer` to the protocol; the dimensions are recorded, not used."""

    def __init__(self, model: LearnedModel, dimensions: FeatureScorer | None = None) -> None:
        self.learned = LearnedScorer(model)
        self._dimensions = dimensions or FeatureScorer()
        self.name = model.name

    def assess(self, text: str, features: TextFeatures) -> tuple[DimensionScores, float]:
        return self._dimensions.dimensions(features), self.learned.score(text)


def _bundled(name: str) -> Path:
    with resources.as_file(resources.files("parjanya.classify").joinpath("models", name)) as path:
        return Path(path)


@cache
def bundled_model() -> LearnedModel:
    """The shipped model, read from the package once (it is immutable data, like a constant)."""
    return load_model(_bundled(BUNDLED_MODEL))


@cache
def bundled_points() -> HeuristicPoints:
    return load_points(_bundled(BUNDLED_POINTS))


def fitted_dimensions(points: HeuristicPoints) -> FeatureScorer:
    """The five dimensions with fitted term points (`learn/heuristic.py`)."""
    return FeatureScorer(apply_points(points), name=points.name)


def configured_dimensions(routing: RoutingConfig) -> FeatureScorer:
    """Hand-set points unless `routing.heuristic_points` names a fitted file."""
    if routing.heuristic_points is None:
        return FeatureScorer()
    return fitted_dimensions(load_points(routing.heuristic_points))


def build_scorer(routing: RoutingConfig) -> Scorer:
    dimensions = configured_dimensions(routing)
    if routing.scorer == "heuristic":
        return HeuristicScorer(routing.weights, dimensions)
    model = load_model(routing.scorer_model) if routing.scorer_model else bundled_model()
    return ModelScorer(model, dimensions)
