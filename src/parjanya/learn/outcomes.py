"""Routing outcomes: the one JSONL format that routing quality is measured and learned from.

One line per prompt::

    {"prompt": "...",                      # or "messages": [{"role": "user", "content": "..."}]
     "source": "mmlu/anatomy",             # the group folds are split by (a benchmark, a tenant...)
     "results": {"low":  {"quality": 0.0, "model": "mixtral-8x7b", "cost_usd": 0.0002},
                 "high": {"quality": 1.0, "model": "gpt-4", "cost_usd": 0.0061}}}

`results` is keyed by tier (`low | mid | high`); each value says how good that tier's answer was,
as a bool or a score in [0, 1], and optionally what it cost and which model gave it. At least two
tiers must be present: "needs the strong tier" is a comparison, so a row with one answer teaches
nothing. Rows exported by `parjanya outcomes export` may carry `prompt_sha256` and `features`
instead of the text when privacy forbids keeping it.

Readers accept this format and the pairwise format RouteLLM's evaluation responses are published
in (`weak_correct` / `strong_correct`, as in the shipped MMLU file); both become `Outcome`.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from parjanya.queues import TIERS, Tier, tier_rank

__all__ = [
    "Outcome",
    "OutcomeFormatError",
    "TierResult",
    "default_data",
    "parse_outcome",
    "read_outcomes",
    "trained_sources",
]


def default_data() -> Path:
    """The outcome file the project ships (see `learn/data/README.md` for its source and licences)."""
    return Path(__file__).with_name("data") / "mmlu-outcomes-train.jsonl.gz"


class OutcomeFormatError(ValueError):
    """A line that is neither format; says which file and line."""


class TierResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    quality: float = Field(ge=0, le=1, allow_inf_nan=False)
    model: str | None = None
    cost_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    answer: str | None = None  # the answer text, when the data carries it (confidence eval)


class Outcome(BaseModel):
    """One prompt and how each tier did on it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    prompt_sha256: str | None = None
    features: dict[str, float] | None = None
    source: str = "unknown"
    results: dict[Tier, TierResult]
    shadow: bool = False  # labelled by a shadow run in production, not a benchmark

    @model_validator(mode="after")
    def _comparable(self) -> Outcome:
        if len(self.results) < 2:
            raise ValueError("results needs at least two tiers to compare")
        if self.prompt is None and not self.messages and self.features is None:
            raise ValueError("one of prompt, messages or features is required")
        return self

    @property
    def text(self) -> str:
        """The prompt as the classifier reads it: the text, or the messages' user turns joined."""
        if self.prompt is not None:
            return self.prompt
        turns = [m.get("content") for m in self.messages or () if m.get("role") != "assistant"]
        return "\n\n".join(t for t in turns if isinstance(t, str))

    @property
    def weak_tier(self) -> Tier:
        return min(self.results, key=tier_rank)

    @property
    def strong_tier(self) -> Tier:
        return max(self.results, key=tier_rank)

    @property
    def weak(self) -> TierResult:
        return self.results[self.weak_tier]

    @property
    def strong(self) -> TierResult:
        return self.results[self.strong_tier]

    @property
    def needs_strong(self) -> bool:
        """The label routing is judged on: the strongest tier did better than the weakest."""
        return self.strong.quality > self.weak.quality


def _from_pairwise(row: dict[str, Any]) -> dict[str, Any]:
    """RouteLLM's published shape: one weak and one strong model, each right or wrong."""
    return {
        "prompt": row["prompt"],
        "source": row.get("source", "unknown"),
        "results": {
            TIERS[0]: {"quality": float(row["weak_correct"]), "model": row.get("weak_model")},
            TIERS[-1]: {"quality": float(row["strong_correct"]), "model": row.get("strong_model")},
        },
    }


def parse_outcome(row: Any) -> Outcome:
    """One decoded JSON value in either format; raises `ValidationError` or `KeyError`."""
    if isinstance(row, dict) and "results" not in row and "weak_correct" in row:
        row = _from_pairwise(row)
    return Outcome.model_validate(row)


def trained_sources(trained_on: Mapping[str, object]) -> set[str]:
    """The sources a model or fitted points name in their `trained_on` record (none if absent)."""
    sources = trained_on.get("sources", [])
    return {str(s) for s in sources} if isinstance(sources, list) else set()


def read_outcomes(paths: Iterable[Path]) -> Iterator[Outcome]:
    """Every outcome in the files (plain or .gz), in order; a bad line stops with file and line."""
    for path in paths:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    yield parse_outcome(json.loads(line))
                except (ValueError, KeyError, TypeError, ValidationError) as error:
                    raise OutcomeFormatError(f"{path}:{number}: {error}") from error
