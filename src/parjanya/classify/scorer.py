"""The one interface a complexity scorer implements.

A scorer turns measured features into the five 0-10 dimensions. The default maps features through
hand-set calibration curves (`dimensions.py`); a learned scorer trained on routed-and-judged tasks
can replace it without touching features, domain detection or policy, because all it sees is
`TextFeatures` and all it returns is `DimensionScores`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from parjanya.classify.features import TextFeatures
from parjanya.schema import DimensionScores


@runtime_checkable
class Scorer(Protocol):
    """Features in, five dimensions out. `name` is recorded with every decision for audits."""

    name: str

    def dimensions(self, features: TextFeatures) -> DimensionScores: ...
