"""Calibration curves: how a raw count becomes a 0..1 share of a dimension.

Kept apart from the scorer so a curve can be tested on its own and reused by any hand-set scorer.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import pairwise


@dataclass(frozen=True, slots=True)
class Curve:
    """A piecewise-linear calibration curve: raw measurement in, 0..1 out, flat beyond its ends.

    Knots are (measurement, output) pairs in increasing measurement order. Piecewise-linear rather
    than a formula so each knot reads as a claim ("three numbered steps is 60 % of the way to a
    fully multi-step task") that a reviewer can check against examples and move.
    """

    knots: tuple[tuple[float, float], ...]
    _xs: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _ends: tuple[float, float, float, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        xs = tuple(x for x, _ in self.knots)
        if len(xs) < 2 or any(b <= a for a, b in pairwise(xs)):
            raise ValueError(f"curve knots must be at least two, strictly increasing: {self.knots}")
        (first_x, first_y), (last_x, last_y) = self.knots[0], self.knots[-1]
        object.__setattr__(self, "_xs", xs)
        object.__setattr__(self, "_ends", (first_x, first_y, last_x, last_y))

    def __call__(self, value: float) -> float:
        first_x, first_y, last_x, last_y = self._ends
        if value <= first_x:  # the common case: most features of most prompts are zero
            return first_y
        if value >= last_x:
            return last_y
        index = bisect_right(self._xs, value)
        (x0, y0), (x1, y1) = self.knots[index - 1], self.knots[index]
        return y0 + (y1 - y0) * (value - x0) / (x1 - x0)


def curve(*knots: tuple[float, float]) -> Curve:
    return Curve(tuple(knots))
