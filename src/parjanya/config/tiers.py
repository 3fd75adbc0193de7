"""Tiers and their deployments: the models each pool may call, their prices and limits."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from parjanya.config.base import Strict
from parjanya.config.settings import DEFAULT_SIM_PORT
from parjanya.queues import Tier


class Deployment(Strict):
    """One model behind one HTTP endpoint."""

    name: str
    provider: Literal["openai", "anthropic"] = "openai"
    base_url: str
    model: str
    api_key_env: str | None = None  # the *name* of the variable holding the key, never the key
    price_in_per_mtok: float = Field(ge=0)
    price_out_per_mtok: float = Field(ge=0)
    context_window: int = Field(gt=0)
    capabilities: list[str] = Field(default_factory=lambda: ["chat"])
    timeout_s: float = Field(default=60.0, gt=0)
    rpm: int | None = Field(default=None, gt=0)  # requests per minute, shared by every worker
    tpm: int | None = Field(default=None, gt=0)  # tokens per minute (in + out), shared likewise
    weight: float = Field(default=1.0, gt=0)  # for the weighted balancer
    # A response body longer than this is a malformed response, and is read no further.
    max_response_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    # Governance (governance/capabilities.py): where prompts may go and what a task may ask for.
    private: bool = (
        False  # prompts stay in-house (a local model): pii_action private uses only these
    )
    residency: str | None = None  # data-residency tag ("eu", "us", ...) a task may require
    latency_s: float | None = Field(default=None, gt=0)  # expected latency, until one is measured
    quality: float = Field(default=0.5, ge=0, le=1)  # for balance: scored

    def cost_usd(self, tokens_in: int, tokens_out: int) -> float:
        """The one place that prices a call."""
        return (tokens_in * self.price_in_per_mtok + tokens_out * self.price_out_per_mtok) / 1e6


BalanceStrategy = Literal[
    "ordered",  # the config's order: primary, secondary, tertiary
    "round_robin",
    "weighted",
    "least_busy",  # fewest calls in flight (counted in Redis across workers)
    "lowest_latency",  # lowest EWMA latency
    "lowest_cost",  # cheapest estimated call
    "most_capacity",  # most remaining rpm/tpm budget
    "scored",  # weighted cost, latency and quality (governance.matching.weights)
]


class TierConfig(Strict):
    confidence_threshold: float = Field(default=0.7, ge=0, le=1)
    balance: BalanceStrategy = "ordered"
    deployments: list[Deployment] = Field(min_length=1)


def sim_deployment(name: str, price_in: float, price_out: float, window: int) -> Deployment:
    return Deployment(
        name=name,
        base_url=f"http://127.0.0.1:{DEFAULT_SIM_PORT}/v1",
        model=name,
        price_in_per_mtok=price_in,
        price_out_per_mtok=price_out,
        context_window=window,
        capabilities=["chat", "code", "json", "tools"],
        timeout_s=30.0,
    )


def default_tiers() -> dict[Tier, TierConfig]:
    return {
        "low": TierConfig(deployments=[sim_deployment("sim-small", 0.15, 0.60, 16_000)]),
        "mid": TierConfig(deployments=[sim_deployment("sim-medium", 1.0, 4.0, 64_000)]),
        "high": TierConfig(deployments=[sim_deployment("sim-large", 5.0, 20.0, 200_000)]),
    }
