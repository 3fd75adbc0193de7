"""Fault knobs: how often each simulated model fails, and how.

Resilience code (retry, fallback, breaker, rate limit) is only as well tested as the failures it
meets, so the sim can fail on purpose: per model, with a default for all, settable at construction
and at runtime. Draws come from the provider's seeded RNG, so a run with the same seed and the same
request order sees the same failures.
"""

from __future__ import annotations

import random
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Fault(StrEnum):
    """What a faulty request gets. The values are also the `[[sim:error=...]]` marker values."""

    rate_limited = "429"  # 429 with a Retry-After header
    server_error = "500"  # 500 with an OpenAI-style error body
    unavailable = "503"  # 503: what every request gets during an outage
    timeout = "timeout"  # no answer for `hang_s` seconds, so the client's read timeout fires
    malformed = "malformed"  # 200 whose body is truncated JSON
    # Marker-only (no rate draws them): an API's native outcome rather than a broken service.
    context_too_long = "context"  # 400 in the API's "prompt too long" shape
    filtered = "filtered"  # 200 cut by the safety filter (content_filter / refusal)


Rate = Field(default=0.0, ge=0.0, le=1.0)


class FaultKnobs(BaseModel):
    """The effective knobs of one model. Rates are per-request probabilities, summing to <= 1."""

    model_config = ConfigDict(extra="forbid")

    rate_429: float = Rate
    rate_500: float = Rate
    rate_timeout: float = Rate
    rate_malformed: float = Rate
    outage: bool = False
    retry_after_s: float = Field(default=1.0, ge=0.0)
    hang_s: float = Field(default=30.0, ge=0.0)

    @model_validator(mode="after")
    def _rates_fit(self) -> FaultKnobs:
        total = self.rate_429 + self.rate_500 + self.rate_timeout + self.rate_malformed
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault rates add up to {total:.3f}; at most 1.0")
        return self

    def draw(self, rng: random.Random) -> Fault | None:
        """One request's fate. Always takes exactly one draw, so knobs never shift later draws."""
        u = rng.random()
        if self.outage:
            return Fault.unavailable
        for fault, rate in (
            (Fault.rate_limited, self.rate_429),
            (Fault.server_error, self.rate_500),
            (Fault.timeout, self.rate_timeout),
            (Fault.malformed, self.rate_malformed),
        ):
            if u < rate:
                return fault
            u -= rate
        return None


class FaultPatch(BaseModel):
    """A partial `FaultKnobs`: only the fields given change; an explicit null means "inherit"."""

    model_config = ConfigDict(extra="forbid")

    rate_429: float | None = Field(default=None, ge=0.0, le=1.0)
    rate_500: float | None = Field(default=None, ge=0.0, le=1.0)
    rate_timeout: float | None = Field(default=None, ge=0.0, le=1.0)
    rate_malformed: float | None = Field(default=None, ge=0.0, le=1.0)
    outage: bool | None = None
    retry_after_s: float | None = Field(default=None, ge=0.0)
    hang_s: float | None = Field(default=None, ge=0.0)


class FaultsConfig(BaseModel):
    """Construction-time faults (`SimConfig.faults`, the `--fault-config` file)."""

    model_config = ConfigDict(extra="forbid")

    default: FaultKnobs = Field(default_factory=FaultKnobs)
    models: dict[str, FaultPatch] = Field(default_factory=dict)


class FaultsUpdate(BaseModel):
    """The body of `POST /_sim/faults`: a partial update of the default and of named models."""

    model_config = ConfigDict(extra="forbid")

    default: FaultPatch | None = None
    models: dict[str, FaultPatch] = Field(default_factory=dict)


def _merge(base: dict[str, Any], patch: FaultPatch) -> dict[str, Any]:
    merged = dict(base)
    for key, value in patch.model_dump(exclude_unset=True).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


class FaultState:
    """The live knobs of one provider: a default plus per-model overrides (only the fields set)."""

    def __init__(self, config: FaultsConfig, models: list[str]) -> None:
        self._models = list(models)
        self._default: dict[str, Any] = config.default.model_dump()
        self._overrides: dict[str, dict[str, Any]] = {}
        self.apply(FaultsUpdate(models=config.models))

    def effective(self, model: str) -> FaultKnobs:
        return FaultKnobs.model_validate({**self._default, **self._overrides.get(model, {})})

    def apply(self, update: FaultsUpdate) -> None:
        """Merge `update` in, all or nothing: `ValueError` (no change) if a model ends invalid."""
        unknown = sorted(set(update.models) - set(self._models))
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; known: {self._models}")
        default = dict(self._default)
        if update.default is not None:
            default.update(update.default.model_dump(exclude_unset=True, exclude_none=True))
        overrides = {name: dict(fields) for name, fields in self._overrides.items()}
        for name, patch in update.models.items():
            overrides[name] = _merge(overrides.get(name, {}), patch)
        for name in self._models:
            try:
                FaultKnobs.model_validate({**default, **overrides.get(name, {})})
            except ValidationError as exc:
                raise ValueError(f"faults of {name}: {exc.errors()[0]['msg']}") from None
        self._default = default
        self._overrides = {name: fields for name, fields in overrides.items() if fields}

    def snapshot(self) -> dict[str, Any]:
        """What `GET /_sim/faults` shows: what was set, and what each model effectively gets."""
        return {
            "default": dict(self._default),
            "models": {name: dict(fields) for name, fields in self._overrides.items()},
            "effective": {name: self.effective(name).model_dump() for name in self._models},
        }
