"""`SimConfig`: everything a simulated provider is built from, as one validated pydantic model.

One model serves three doors: Python (`SimProvider(SimConfig(...))`), a spawned process (the JSON
in `PARJANYA_SIM_CONFIG`) and the CLI (flags layered over that JSON). Model entries are merged over
the default catalogue, so `{"models": {"sim-large": {"capability": 0.9}}}` changes one field of one
model and keeps the rest.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from parjanya.sim.faults import FaultsConfig
from parjanya.sim.models import Latency, SimModel, default_models

ENV_VAR = "PARJANYA_SIM_CONFIG"


class SimConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: dict[str, SimModel] = Field(default_factory=default_models)
    latency_scale: float = Field(default=1.0, ge=0.0)  # 0 = instant; multiplies drawn latencies
    latency: Latency | None = None  # when set, every model uses this distribution instead
    seed: int = 0  # seeds fault and latency draws: same seed + same request order = same run
    faults: FaultsConfig = Field(default_factory=FaultsConfig)

    @field_validator("models", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> Any:
        """Merge the given entries field by field over the default catalogue."""
        if not isinstance(value, dict):
            return value
        merged: dict[str, Any] = {name: m.model_dump() for name, m in default_models().items()}
        for name, spec in value.items():
            if isinstance(spec, SimModel):
                merged[name] = spec.model_dump()
            elif isinstance(spec, dict) and isinstance(merged.get(name), dict):
                merged[name] = {**merged[name], **spec}
            else:
                merged[name] = spec
        return merged

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> SimConfig:
        """The config in `PARJANYA_SIM_CONFIG` (JSON), or the defaults when it is unset or empty."""
        raw = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
        return cls.model_validate_json(raw) if raw else cls()

    def to_env(self) -> dict[str, str]:
        """The environment entry that makes `from_env` rebuild this config in a child process."""
        return {ENV_VAR: self.model_dump_json(exclude_none=True)}
