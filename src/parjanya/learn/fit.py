"""`parjanya train`'s recipe: a sign-constrained linear model of "the low tier fails this prompt".

Why this recipe. The public outcome data is weak evidence (one benchmark family, a 16 % positive
rate), and a flexible model fitted to it learns that benchmark's quirks: with free signs, longer
answer options became "harder" and more quantities "easier", and held-out AUROC fell to chance.
So the model is ridge regression with every coefficient constrained to the sign its feature's
principle states (`classify.difficulty.SIGNS`): the data decides how much each measure matters,
never which way. The target is "the weakest tier's answer was not good" (1 - its quality), a
denser signal than "only the strong tier was right" and the probability the thresholds read.

Thresholds come with the model. The raw probability is mapped onto the 1-10 score through knots
placed so the default thresholds (3.5, 6.5) split the training prompts in the seed's mix: the
easiest 60 % low, the next 30 % mid, the hardest 10 % high (by out-of-fold probability, so the
split is what unseen prompts of the same kind would get). That is a cost-first default; `parjanya
eval --calibrate --target-quality 0.95` finds the thresholds that keep a quality target on your
own outcomes and writes them into the config.

Optional hashed n-grams (`--ngrams`) add a second stage fitted to the first stage's residuals:
they learn the recurring kinds of task of one deployment's own exported outcomes. They do not
transfer between kinds of prompt, so the bundled model has none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import sklearn
from scipy import sparse
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold, KFold
from sklearn.preprocessing import StandardScaler

from parjanya.classify.difficulty import FEATURE_NAMES, SIGNS, difficulty_features
from parjanya.classify.learned import LearnedModel, LearnedScorer, NgramWeights, ngram_buckets
from parjanya.config import Thresholds
from parjanya.learn.outcomes import Outcome

__all__ = ["TrainOptions", "cross_validated", "fit_model", "options_of", "score_knots"]

SEED = 0
NGRAM_BUCKETS = 1 << 14
#: At most this many n-gram weights are kept (the largest by magnitude): bounds the model file.
NGRAM_KEEP = 20_000
#: The seed's agent workload: 60 % routine, 30 % architectural, 10 % deep research. The default
#: thresholds cut the training prompts' out-of-fold probabilities at these quantiles.
SEED_MIX = (0.60, 0.90)


@dataclass(frozen=True)
class TrainOptions:
    name: str = "difficulty-v1"
    alpha: float = 1.0
    ngrams: bool = False
    ngram_alpha: float = 30.0
    folds: int = 5


def options_of(model: LearnedModel) -> TrainOptions:
    """The recipe a model was fitted with, to refit it in folds exactly as it was trained."""
    alpha = model.trained_on.get("alpha", TrainOptions.alpha)
    return TrainOptions(
        name=model.name,
        alpha=float(alpha) if isinstance(alpha, int | float) else TrainOptions.alpha,
        ngrams=model.ngrams is not None,
    )


def feature_matrix(outcomes: Sequence[Outcome]) -> np.ndarray:
    """Sign-oriented features; a row exported without its text brings its own `features`."""
    signs = np.array([SIGNS[n] for n in FEATURE_NAMES])
    rows = []
    for outcome in outcomes:
        values = difficulty_features(outcome.text) if outcome.text else (outcome.features or {})
        rows.append([float(values.get(n, 0.0)) for n in FEATURE_NAMES])
    matrix: np.ndarray = np.asarray(rows, dtype=float).reshape(len(rows), len(FEATURE_NAMES))
    oriented: np.ndarray = matrix * signs
    return oriented


def _target(outcomes: Sequence[Outcome]) -> np.ndarray:
    return np.array([1.0 - o.weak.quality for o in outcomes])


def _ngram_matrix(outcomes: Sequence[Outcome]) -> sparse.csr_matrix:
    rows, cols = [], []
    for i, outcome in enumerate(outcomes):
        buckets = ngram_buckets(outcome.text, NGRAM_BUCKETS)
        rows.extend([i] * len(buckets))
        cols.extend(buckets)
    data = np.ones(len(rows))
    return sparse.csr_matrix((data, (rows, cols)), shape=(len(outcomes), NGRAM_BUCKETS))


def _fit_raw(outcomes: Sequence[Outcome], options: TrainOptions) -> dict[str, object]:
    x, y = feature_matrix(outcomes), _target(outcomes)
    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    ridge = Ridge(alpha=options.alpha, positive=True).fit((x - scaler.mean_) / scale, y)
    fields: dict[str, object] = {
        "features": FEATURE_NAMES,
        "signs": tuple(SIGNS[n] for n in FEATURE_NAMES),
        "mean": tuple(float(v) for v in scaler.mean_),
        "scale": tuple(float(v) for v in scale),
        "coef": tuple(float(v) for v in ridge.coef_),
        "intercept": float(ridge.intercept_),
    }
    if options.ngrams and any(o.text for o in outcomes):
        residual = y - ridge.predict((x - scaler.mean_) / scale)
        second = Ridge(alpha=options.ngram_alpha, fit_intercept=False, random_state=SEED)
        weights = second.fit(_ngram_matrix(outcomes), residual).coef_
        keep = np.argsort(-np.abs(weights), kind="stable")[:NGRAM_KEEP]
        fields["ngrams"] = NgramWeights(
            buckets=NGRAM_BUCKETS,
            weights={int(i): round(float(weights[i]), 6) for i in keep if abs(weights[i]) > 1e-6},
        )
    return fields


def _splits(groups: Sequence[str], folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds grouped by source, so no source is scored by a model that saw it."""
    distinct = len(set(groups))
    index = np.arange(len(groups))
    if distinct >= 2:
        return list(GroupKFold(n_splits=min(folds, distinct)).split(index, groups=groups))
    return list(KFold(n_splits=folds, shuffle=True, random_state=SEED).split(index))


def cross_validated(outcomes: Sequence[Outcome], options: TrainOptions | None = None) -> np.ndarray:
    """Out-of-fold probabilities: each prompt scored by a model fitted without its source."""
    options = options or TrainOptions()
    predictions = np.zeros(len(outcomes))
    for train, test in _splits([o.source for o in outcomes], options.folds):
        model = LearnedModel(name="fold", **_fit_raw([outcomes[i] for i in train], options))
        scorer = LearnedScorer(model)
        predictions[test] = [scorer.probability(outcomes[i].text) for i in test]
    return predictions


def score_knots(
    probabilities: np.ndarray, thresholds: Thresholds | None = None
) -> tuple[tuple[float, float], ...]:
    """Knots mapping probability to score so the default thresholds split in the seed's mix."""
    thresholds = thresholds or Thresholds()
    low, mid = (float(v) for v in np.quantile(probabilities, SEED_MIX))
    low = min(max(low, 0.001), 0.98)
    mid = min(max(mid, low + 0.001), 0.99)
    return ((0.0, 1.0), (low, thresholds.low), (mid, thresholds.mid), (1.0, 10.0))


def fit_model(
    outcomes: Sequence[Outcome],
    options: TrainOptions | None = None,
    *,
    describe: Callable[[Sequence[Outcome]], dict[str, object]] | None = None,
    notice: str = "",
) -> LearnedModel:
    """Fit on every outcome; the score knots come from out-of-fold predictions, not in-sample."""
    options = options or TrainOptions()
    if len(outcomes) < 2 * options.folds:
        raise ValueError(
            f"need at least {2 * options.folds} outcomes to train, got {len(outcomes)}"
        )
    fields = _fit_raw(outcomes, options)
    out_of_fold = cross_validated(outcomes, options)
    trained_on: dict[str, object] = {
        "rows": len(outcomes),
        "sources": sorted({o.source for o in outcomes}),
        "seed": SEED,
        "alpha": options.alpha,
        "scikit_learn": sklearn.__version__,
    }
    trained_on.update(describe(outcomes) if describe else {})
    return LearnedModel(
        name=options.name,
        knots=score_knots(out_of_fold),
        trained_on=trained_on,
        notice=notice,
        **fields,
    )
