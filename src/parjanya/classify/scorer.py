"""The one interface a complexity scorer implements, and the choice of scorer, made once.

Every decision records the five dimensions (measured by the heuristic's calibration table, so a
route can always be explained in the seed's terms); the scorer turns a request into the 1-10
score the thresholds cut. Two kinds ship:

- `HeuristicScorer` ("features-v1"): the seed's weighted sum of the five dimensions.
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

from parjanya.classify.learned import LearnedModel, LearnedScorer, load_model
from parjanya.classify.policy import complexity_score
from parjanya.config import RoutingConfig, Weights
from parjanya.schema import DimensionScores

__all__ = ["BUNDLED_MODEL", "HeuristicScorer", "Scorer", "build_scorer", "bundled_model"]

#: The model `routing.scorer: learned` uses when `routing.scorer_model` is not set.
BUNDLED_MODEL = "difficulty-mmlu-v1.json"


@runtime_checkable
class Scorer(Protocol):
    """Text and its five dimensions in, a 1-10 score out. `name` is recorded with every decision."""

    name: str

    def score(self, text: str, dimensions: DimensionScores) -> float: ...


class HeuristicScorer:
    """The seed's formula: the configured weights over the five dimensions."""

    name = "features-v1"

    def __init__(self, weights: Weights | None = None) -> None:
        self._weights = weights or Weights()

    def score(self, text: str, dimensions: DimensionScores) -> float:
        return complexity_score(dimensions, self._weights)


class ModelScorer:
    """Adapts a `LearnedScorer` to the protocol: the dimensions are recorded, not used."""

    def __init__(self, model: LearnedModel) -> None:
        self.learned = LearnedScorer(model)
        self.name = model.name

    def score(self, text: str, dimensions: DimensionScores) -> float:
        return self.learned.score(text)


@cache
def bundled_model() -> LearnedModel:
    """The shipped model, read from the package once (it is immutable data, like a constant)."""
    source = resources.files("parjanya.classify").joinpath("models", BUNDLED_MODEL)
    with resources.as_file(source) as path:
        return load_model(Path(path))


def build_scorer(routing: RoutingConfig) -> Scorer:
    if routing.scorer == "heuristic":
        return HeuristicScorer(routing.weights)
    model = load_model(routing.scorer_model) if routing.scorer_model else bundled_model()
    return ModelScorer(model)
