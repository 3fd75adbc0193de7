"""Calibration curves: how a raw count becomes a 0..1 share of a dimension.

Kept apart from the scorer so a curve can be tested on its own and reused by any hand-set scorer.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Curve:
    """A piecewise-linear calibration curve: raw measurement in, 0..1 out, flat beyond its ends.

    Knots are (measurement, output) pairs in increasing measurement order. Piecewise-linear rather
    than a formula so each knot reads as a claim ("three numbered steps is 60 % of the way to a
    fully multi-step task") that a reviewer can check against examples and move.
    """

    knots: tuple[tuple[float, float], ...]
    _xs: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        xs = tuple(x for x, _ in self.knots)
        if len(xs) < 2 or any(b <= a for a, b in zip(xs, xs[1:], strict=False)):
            raise ValueError(f"curve knots must be at least two, strictly increasing: {self.knots}")
        object.__setattr__(self, "_xs", xs)

    def __call__(self, value: float) -> float:
        knots = self.knots
        if value <= knots[0][0]:
            return knots[0][1]
        if value >= knots[-1][0]:
            return knots[-1][1]
        index = bisect_right(self._xs, value)
        (x0, y0), (x1, y1) = knots[index - 1], knots[index]
        return y0 + (y1 - y0) * (value - x0) / (x1 - x0)


def curve(*knots: tuple[float, float]) -> Curve:
    return Curve(tuple(knots))
