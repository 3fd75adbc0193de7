"""The five dimensions, "features-v1": measured features through calibration curves, per dimension.

Every decision records them; the heuristic scorer (`routing.scorer: heuristic`) also scores with
their weighted sum, while the learned default scores with its own model (`scorer.py`).

Why not count keywords: a list of "hard" words fires on any prompt that mentions them, so a short
question that says "prove" scores like a real proof, and a long, many-constraint task without the
magic words scores like a typo fix (the product brief found keyword routers such as LiteLLM's no
better than chance at picking the prompts that need a strong model). Here every dimension is a
sum of *terms*; each term reads one measured quantity (numbered steps, distinct deliverables,
words, distinct concepts, vague words per 100 words, log-scaled tokens), passes it through a
saturating curve, and contributes at most its `points` of the dimension's 10. Word lists feed only
some terms, and no single term can carry a dimension: structure, breadth and evidence must agree.

All calibration lives in the `CALIBRATION` table below and nowhere else. Each term's points and
knots are a claim a reviewer can check against examples; change them here, and the unit tests on
routine / architectural / research workloads say whether routing still holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import attrgetter as _attr
from types import MappingProxyType

from parjanya.classify.curves import Curve, curve
from parjanya.classify.features import TextFeatures
from parjanya.schema import DimensionScores, Sla

MAX_SCORE = 10.0


@dataclass(frozen=True, slots=True)
class Term:
    """One measured quantity's share of a dimension: up to `points` of 10, along `curve`."""

    label: str
    measure: Callable[[TextFeatures], float]
    curve: Curve
    points: float

    def score(self, features: TextFeatures) -> float:
        return self.points * self.curve(self.measure(features))


# -- derived measurements -------------------------------------------------------------------------


def _steps(f: TextFeatures) -> float:
    """Explicit structure: numbered or bulleted items and sequencing words (first, then...)."""
    return f.numbered_steps + f.list_items + f.sequence_markers


def _log10_tokens(f: TextFeatures) -> float:
    return math.log10(max(f.estimated_tokens, 1))


def _per_100_words(count: int, f: TextFeatures) -> float:
    return 100.0 * count / max(f.words, 1)


def _vague_density(f: TextFeatures) -> float:
    return _per_100_words(f.vague_words, f)


def _specifics_density(f: TextFeatures) -> float:
    """Names, numbers, paths, code and stated constraints per 100 words: the opposite of vague."""
    return _per_100_words(f.specifics + f.constraint_words, f)


def _unanchored_questions(f: TextFeatures) -> float:
    """Questions asked while naming few concrete things: "how do I make it faster?"."""
    return f.questions * (1.0 if f.specifics < 3 else 0.3)


def _evidence(f: TextFeatures) -> float:
    """Logs, traces and code to reason over: debugging material, not just a request."""
    return f.log_lines + f.code_lines


_SLA_RISK: Mapping[Sla, float] = MappingProxyType(
    {Sla.critical: 1.0, Sla.standard: 0.0, Sla.batch: 0.0}
)


def _sla_risk(f: TextFeatures) -> float:
    return _SLA_RISK[f.sla]


# -- calibration: the one place the numbers live --------------------------------------------------

#: Knots read as (measured value, fraction of the term's points). A dimension's points add up to
#: 10-17 and no term has more than 6 (10 for context, which is one measurement): a request strong
#: on most terms saturates at 10, and one strong term alone cannot get there.
CALIBRATION: Mapping[str, tuple[Term, ...]] = MappingProxyType(
    {
        "structural": (
            # explicit structure: 3 numbered steps is most of a multi-step task, 10+ is a plan.
            Term("steps", _steps,
                 curve((0, 0), (1, 0.2), (2, 0.4), (4, 0.7), (7, 0.9), (12, 1)), 3.0),
            # parts listed inline: "endpoints, pagination, filtering and versioning".
            Term("enumerated parts", _attr("clause_breaks"),
                 curve((0, 0), (1, 0.25), (2, 0.45), (3, 0.6), (5, 0.78), (8, 0.92), (14, 1)), 3.0),
            # distinct things asked for: "rename" is one, "design, compare, plan, estimate" four.
            Term("deliverables", _attr("deliverables"),
                 curve((1, 0), (2, 0.4), (3, 0.6), (5, 0.85), (8, 1)), 2.5),
            Term("sub-questions", _attr("questions"),
                 curve((0, 0), (1, 0.4), (2, 0.65), (4, 1)), 1.5),
            Term("conditionals", _attr("conditionals"),
                 curve((0, 0), (1, 0.35), (3, 0.75), (6, 1)), 1.0),
            # how much is being said: a one-line fix is ~10 words, a design brief 40+.
            Term("length", _attr("words"),
                 curve((10, 0), (20, 0.2), (30, 0.45), (50, 0.7), (100, 0.9), (250, 1)), 2.5),
            Term("structured output", _attr("wants_json"), curve((0, 0), (1, 1)), 0.5),
        ),
        "cognitive": (
            # analysis / design / proof / debugging demands; saturates so repetition stops paying.
            Term("reasoning demands", _attr("reasoning_words"),
                 curve((0, 0), (1, 0.4), (2, 0.55), (3, 0.65), (5, 0.8), (8, 0.92), (12, 1)), 6.0),
            # breadth: how many distinct concepts must be held together at once.
            Term("concepts", _attr("concepts"),
                 curve((3, 0), (5, 0.25), (8, 0.5), (12, 0.7), (20, 0.88), (35, 1)), 3.0),
            Term("trade-offs", _attr("tradeoff_words"),
                 curve((0, 0), (1, 0.5), (2, 0.8), (3, 1)), 1.5),
            Term("why / how", _attr("explanation_requests"), curve((0, 0), (1, 0.6), (2, 1)), 1.0),
            Term("math", _attr("math_symbols"), curve((0, 0), (2, 0.5), (6, 1)), 1.5),
            # many constraints to satisfy at once is reasoning load, not just length.
            Term("constraints", _attr("constraint_words"),
                 curve((0, 0), (1, 0.2), (3, 0.5), (6, 0.8), (10, 1)), 2.0),
            # logs, traces and code to reason over: the material of a diagnosis.
            Term("evidence", _evidence, curve((0, 0), (4, 0.4), (15, 1)), 1.5),
        ),
        "context": (
            # log10(tokens): <200 tokens ~0-1, 2k ~4, 20k ~7, 100k+ ~10 (text + attached context).
            Term("input tokens", _log10_tokens,
                 curve((1.7, 0), (2.3, 0.1), (3.3, 0.4), (4.3, 0.7), (5.0, 1.0)), 10.0),
            Term("files named", _attr("file_refs"), curve((0, 0), (3, 0.5), (8, 1)), 1.0),
        ),
        "ambiguity": (
            Term("vague wording", _vague_density, curve((0, 0), (1, 0.3), (3, 0.7), (6, 1)), 4.0),
            # open scope: the answer is not known yet (intermittent, investigate, unclear...).
            Term("open scope", _attr("open_scope_words"),
                 curve((0, 0), (1, 0.4), (2, 0.6), (4, 0.85), (6, 1)), 3.5),
            # few anchors per 100 words: a request that names nothing concrete.
            Term("missing specifics", _specifics_density,
                 curve((0, 1), (4, 0.6), (10, 0.2), (20, 0)), 2.0),
            Term("unanchored questions", _unanchored_questions,
                 curve((0, 0), (1, 0.5), (3, 1)), 1.0),
        ),
        "risk": (
            Term("SLA", _sla_risk, curve((0, 0), (1, 1)), 3.0),
            # production, payments, medical, legal, security, compliance...
            Term("domain risk", _attr("risk_terms"),
                 curve((0, 0), (1, 0.3), (3, 0.6), (6, 0.85), (10, 1)), 4.5),
            Term("irreversible operations", _attr("destructive_terms"),
                 curve((0, 0), (1, 0.4), (3, 0.8), (5, 1)), 1.5),
            Term("personal data or secrets", lambda f: float(len(f.pii)),
                 curve((0, 0), (1, 0.7), (2, 1)), 2.0),
        ),
    }
)  # fmt: skip


def score_dimension(terms: tuple[Term, ...], features: TextFeatures) -> float:
    total = 0.0
    for term in terms:  # a plain loop: this runs ~25 times per request, on the hot path
        total += term.points * term.curve(term.measure(features))
    return round(min(MAX_SCORE, max(0.0, total)), 2)


def explain(features: TextFeatures) -> dict[str, dict[str, float]]:
    """Each term's contribution, per dimension: what to read when a route looks wrong."""
    return {
        dimension: {term.label: round(term.score(features), 2) for term in terms}
        for dimension, terms in CALIBRATION.items()
    }


class FeatureScorer:
    """The five dimensions: a calibration table (hand-set, or with fitted points) applied to features."""

    def __init__(
        self, calibration: Mapping[str, tuple[Term, ...]] = CALIBRATION, name: str = "features-v1"
    ) -> None:
        self._calibration = calibration
        self.name = name

    def dimensions(self, features: TextFeatures) -> DimensionScores:
        scores = {
            dimension: score_dimension(terms, features)
            for dimension, terms in self._calibration.items()
        }
        return DimensionScores.model_validate(scores)
