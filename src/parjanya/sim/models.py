"""The simulated model catalogue: three models of rising capability and latency, and a local one.

A model here is only a capability (compared with the hidden difficulty of a prompt), a latency
distribution and a context window; prices live in Parjanya's deployment config, not in the sim.
The defaults mirror the cheap / middle / expensive shape of real tiers so routing has something to
trade off: `sim-small` is fast and often wrong, `sim-large` slow and almost always right.
"""

from __future__ import annotations

import math
import random
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FixedLatency(_Strict):
    """Always the same delay: benchmarks use it to hold a known number of requests in flight."""

    kind: Literal["fixed"] = "fixed"
    seconds: float = Field(ge=0.0)

    def draw(self, rng: random.Random) -> float:
        return self.seconds


class UniformLatency(_Strict):
    kind: Literal["uniform"] = "uniform"
    lo: float = Field(ge=0.0)
    hi: float = Field(ge=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> UniformLatency:
        if self.lo > self.hi:
            raise ValueError("uniform latency needs lo <= hi")
        return self

    def draw(self, rng: random.Random) -> float:
        return rng.uniform(self.lo, self.hi)


class LognormalLatency(_Strict):
    """Right-skewed around a median, like real model latency: mostly near it, at times far above."""

    kind: Literal["lognormal"] = "lognormal"
    median: float = Field(gt=0.0)
    sigma: float = Field(default=0.3, ge=0.0, le=3.0)

    def draw(self, rng: random.Random) -> float:
        return rng.lognormvariate(math.log(self.median), self.sigma)


Latency = Annotated[FixedLatency | UniformLatency | LognormalLatency, Field(discriminator="kind")]


class SimModel(_Strict):
    """One simulated model. It answers well exactly when `capability >= difficulty(prompt)`,
    except on its blind spots.

    `blind_spots` are phrases (matched case-insensitively in the prompt's text) the model gets wrong
    while sounding sure: it answers with a capable model's fluency (high logprobs, no hedging) but a
    wrong final answer. Real small models are confidently wrong on topics they never learned;
    without this knob every wrong sim answer is also a low-confidence one, so escalation would
    catch every miss and a shadow run on a higher tier (`learn/shadow.py`) could find nothing new.
    """

    capability: float = Field(ge=0.0, le=1.0)
    latency: Latency
    context_window: int = Field(default=128_000, gt=0)  # in prompt tokens (chars / 4)
    blind_spots: list[str] = Field(default_factory=list)

    def blind_to(self, text: str) -> bool:
        lowered = text.lower()
        return any(spot.lower() in lowered for spot in self.blind_spots if spot)


def default_models() -> dict[str, SimModel]:
    """The catalogue every `SimConfig` starts from; names match the default deployments."""
    return {
        "sim-small": SimModel(
            capability=0.35, latency=LognormalLatency(median=0.040), context_window=16_000
        ),
        "sim-medium": SimModel(
            capability=0.65, latency=LognormalLatency(median=0.120), context_window=64_000
        ),
        "sim-large": SimModel(
            capability=0.95, latency=LognormalLatency(median=0.300), context_window=200_000
        ),
        # A model run in-house (as Ollama or vLLM would be): the `private: true` deployment of
        # tests and examples, so a ledger can show which prompts stayed private.
        "sim-local": SimModel(
            capability=0.65, latency=LognormalLatency(median=0.150), context_window=64_000
        ),
    }
