"""Fitted term points for the heuristic: the file `learn/heuristic.py` writes and workers read.

Only the points (each term's height) are in the file; the terms themselves, their measurements
and their curve shapes are code (`dimensions.CALIBRATION`). A file naming a term the code does not
have is refused, so a renamed term cannot silently lose its points.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field

from parjanya.classify.dimensions import CALIBRATION, Term

__all__ = ["HeuristicPoints", "apply_points", "load_points"]


class HeuristicPoints(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = "parjanya-heuristic/1"
    name: str
    points: dict[str, dict[str, float]]
    support: dict[str, float] = Field(default_factory=dict)
    trained_on: dict[str, object] = Field(default_factory=dict)
    notice: str = ""


def apply_points(
    fitted: HeuristicPoints, calibration: Mapping[str, tuple[Term, ...]] = CALIBRATION
) -> Mapping[str, tuple[Term, ...]]:
    """The calibration table with the file's points in place of the hand-set ones."""
    table: dict[str, tuple[Term, ...]] = {}
    for dimension, terms in calibration.items():
        given = fitted.points.get(dimension, {})
        unknown = set(given) - {t.label for t in terms}
        if unknown:
            raise ValueError(f"{fitted.name}: no term {sorted(unknown)} in dimension {dimension}")
        table[dimension] = tuple(
            dataclasses.replace(t, points=given.get(t.label, t.points)) for t in terms
        )
    return MappingProxyType(table)


def load_points(path: Path) -> HeuristicPoints:
    try:
        return HeuristicPoints.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot load heuristic points {path}: {error}") from error
