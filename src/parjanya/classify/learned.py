"""The learned scorer: a fitted linear model of "the low tier will fail this prompt", read from a file.

`parjanya train` fits the model offline (scikit-learn, in `parjanya.learn.fit`) and writes this
JSON; workers only read it, once per process, and score with a dot product in pure Python, so a
classifier needs neither scikit-learn nor numpy and a model file can be read and diffed by a
person. JSON rather than pickle: loading a model must never run code from the file.

The model predicts the probability that the weakest tier's answer is not good enough. `knots`
map that probability onto the 1-10 score (piecewise-linear, `classify.curves`); training places
them so the default thresholds cut where calibration on the training data says (`learn/fit.py`),
and a model without knots maps `p` to `1 + 9 * p`.
The five dimensions are still measured by the heuristic and recorded with each decision, so a
route can be explained in the seed's terms even when the learned score decided it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from itertools import pairwise
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from parjanya.classify.curves import Curve
from parjanya.classify.difficulty import FEATURE_NAMES, difficulty_features

__all__ = ["FORMAT", "LearnedModel", "LearnedScorer", "NgramWeights", "load_model"]

FORMAT = "parjanya-scorer/1"
_NGRAM_TOKEN = re.compile(r"[a-z0-9]+")


class NgramWeights(BaseModel):
    """Hashed word unigrams and bigrams: topic words of one deployment's own traffic.

    They do not transfer between kinds of prompt, so the shipped model has none; a model trained
    on a deployment's exported outcomes may, where the same kinds of task recur.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    buckets: int = Field(gt=0, le=1 << 20)
    weights: dict[int, float]


class LearnedModel(BaseModel):
    """The model file. Feature order is by name and checked on load, never assumed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = FORMAT
    name: str
    target: str = "low_fails"
    features: tuple[str, ...]
    signs: tuple[float, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    knots: tuple[tuple[float, float], ...] = ((0.0, 1.0), (1.0, 10.0))
    ngrams: NgramWeights | None = None
    trained_on: dict[str, object] = Field(default_factory=dict)
    notice: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> LearnedModel:
        if self.format != FORMAT:
            raise ValueError(f"model format {self.format!r} is not {FORMAT!r}")
        if self.features != FEATURE_NAMES:
            raise ValueError(
                f"model features {list(self.features)} differ from this version's "
                f"{list(FEATURE_NAMES)}; retrain it with `parjanya train`"
            )
        sizes = {len(self.signs), len(self.mean), len(self.scale), len(self.coef)}
        if sizes != {len(self.features)}:
            raise ValueError("signs, mean, scale and coef must each have one value per feature")
        if any(s <= 0 for s in self.scale):
            raise ValueError("scale values must be positive")
        Curve(self.knots)  # raises unless the knots are at least two, strictly increasing
        return self


def ngram_buckets(text: str, buckets: int) -> list[int]:
    """Stable hashes (not Python's salted `hash`) of the lowercased words and word pairs."""
    words = _NGRAM_TOKEN.findall(text.lower())
    grams = words + [f"{a} {b}" for a, b in pairwise(words)]
    return [
        int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little") % buckets
        for g in grams
    ]


class LearnedScorer:
    """Scores text with a `LearnedModel`: `probability` for analysis, `score` for routing."""

    def __init__(self, model: LearnedModel) -> None:
        self.model = model
        self.name = model.name
        # Fold sign, mean and scale into one weight and one offset per feature: one multiply-add
        # per feature on the hot path.
        self._weights = tuple(
            c * s / sc for c, s, sc in zip(model.coef, model.signs, model.scale, strict=True)
        )
        self._offset = model.intercept - sum(
            c * m / sc for c, m, sc in zip(model.coef, model.mean, model.scale, strict=True)
        )
        self._to_score = Curve(model.knots)

    def probability(self, text: str) -> float:
        values = difficulty_features(text)
        total = self._offset
        for name, weight in zip(FEATURE_NAMES, self._weights, strict=True):
            total += weight * values[name]
        ngrams = self.model.ngrams
        if ngrams is not None:
            table = ngrams.weights
            total += sum(table.get(b, 0.0) for b in ngram_buckets(text, ngrams.buckets))
        return min(1.0, max(0.0, total)) if math.isfinite(total) else 1.0

    def to_score(self, probability: float) -> float:
        return round(min(10.0, max(1.0, self._to_score(probability))), 2)

    def score(self, text: str) -> float:
        return self.to_score(self.probability(text))


def load_model(path: Path) -> LearnedModel:
    """Read and validate a model file; errors name the file."""
    try:
        return LearnedModel.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot load scorer model {path}: {error}") from error
