"""Settings: where things are (environment) and how routing behaves (YAML).

Two sources, two models. `Settings` comes from `PARJANYA_*` environment variables (pydantic-settings)
and says where the broker, the store and the config file are. `ParjanyaConfig` is the routing and
reliability policy loaded from `config/parjanya.yaml`; its pydantic defaults are the documented
defaults, and a test keeps the shipped YAML equal to them. Strings in the YAML may use
`${VAR:-default}` so one file serves a laptop, CI and a cluster.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from parjanya.limits import RequestLimits
from parjanya.queues import TIERS, Tier

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
DEFAULT_SIM_PORT = 8686


class Settings(BaseSettings):
    """Process environment. Only locations and switches live here, never routing policy."""

    model_config = SettingsConfigDict(env_prefix="PARJANYA_", extra="ignore")

    broker_url: str = DEFAULT_BROKER_URL
    result_url: str | None = None  # the store; defaults to the broker's Redis
    config: Path | None = None  # YAML policy file; see `load_config`
    data_dir: Path = Path(".parjanya")
    # Per-process overrides of `reliability.max_inflight` / `admitting_threads` (`parjanya worker
    # -c` sets the first); read when a worker builds its context, not at import.
    max_inflight: int | None = Field(default=None, gt=0)
    admitting_threads: int | None = Field(default=None, gt=0)
    # Where a worker writes its liveness heartbeat (`parjanya alive` reads it); unset:
    # `<data_dir>/alive/<host>-<pid>.json`.
    liveness_file: Path | None = None
    # Reliability drills only: a worker kills itself on a hop whose prompt contains this string
    # (worker/chaos.py). Unset, no hook is installed at all.
    chaos_kill_on: str | None = None

    @property
    def store_url(self) -> str:
        return self.result_url or self.broker_url


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Deployment(_Strict):
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
]


class TierConfig(_Strict):
    confidence_threshold: float = Field(default=0.7, ge=0, le=1)
    balance: BalanceStrategy = "ordered"
    deployments: list[Deployment] = Field(min_length=1)


class Weights(_Strict):
    structural: float = 0.25
    cognitive: float = 0.25
    context: float = 0.20
    ambiguity: float = 0.15
    risk: float = 0.15

    @model_validator(mode="after")
    def _sum_to_one(self) -> Weights:
        total = self.structural + self.cognitive + self.context + self.ambiguity + self.risk
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"complexity weights must sum to 1.0, not {total:.4f}")
        return self


class Thresholds(_Strict):
    """Score cut points: score <= low goes low, <= mid goes mid, above goes high."""

    low: float = Field(default=3.5, ge=1, le=10)
    mid: float = Field(default=6.5, ge=1, le=10)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.low >= self.mid:
            raise ValueError("thresholds.low must be below thresholds.mid")
        return self


class SlaPolicy(_Strict):
    min_tier: Tier | None = None
    max_tier: Tier | None = None


class RoutingConfig(_Strict):
    weights: Weights = Field(default_factory=Weights)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    max_escalations: int = Field(default=1, ge=0, le=len(TIERS) - 1)
    sla: dict[str, SlaPolicy] = Field(
        default_factory=lambda: {
            "critical": SlaPolicy(min_tier="mid"),
            "standard": SlaPolicy(),
            "batch": SlaPolicy(),
        }
    )
    pii_action: Literal["record", "redact"] = "record"
    expected_output_tokens: int = Field(default=512, ge=1)  # for budget estimates before a call
    # Which scorer turns a request into its 1-10 score (classify/scorer.py): `learned` reads
    # `scorer_model`, or the bundled model fitted to public outcomes when that is null.
    scorer: Literal["learned", "heuristic"] = "learned"
    scorer_model: Path | None = None
    heuristic_points: Path | None = None  # fitted term points; null: the hand-set table
    # This share of tasks answered below the top tier is run again on the next tier up, billed and
    # marked as a shadow, never returned to the caller; the two answers give a labelled outcome.
    shadow_rate: float = Field(default=0.0, ge=0, le=1)
    # Compare shadow answers with this judge deployment instead of by agreement (learn/judging.py).
    shadow_judge: str | None = None


def _default_budgets() -> dict[str, int]:
    # Tries on ONE deployment per error type before falling back (seed 003's decision matrix):
    # 429 waits out Retry-After once then moves on; a timeout is retried once; 5xx falls back at
    # once; a malformed body is retried once; auth, bad request, filtered, too long never retry.
    return {
        "rate_limited": 2,
        "timeout": 2,
        "server_error": 1,
        "malformed_response": 2,
        "connect_failed": 2,
    }


class RetryConfig(_Strict):
    """Retries of one deployment before falling back to the next one of the tier."""

    max_attempts: int = Field(default=2, ge=1, le=10)
    backoff_s: float = Field(default=0.2, ge=0)
    max_backoff_s: float = Field(default=5.0, ge=0)
    budgets: dict[str, int] = Field(default_factory=_default_budgets)
    max_retry_after_s: float = Field(default=5.0, ge=0)  # a longer Retry-After moves on instead


class BreakerConfig(_Strict):
    """Per-deployment circuit breaker, shared by every worker through Redis."""

    failure_threshold: int = Field(default=5, ge=1)  # consecutive failures that open it
    failure_rate: float | None = Field(default=None, gt=0, le=1)  # or: this rate over the window
    window_s: float = Field(default=60.0, gt=0)
    min_calls: int = Field(default=20, ge=1)  # calls in the window before the rate counts
    reset_after_s: float = Field(default=30.0, gt=0)  # open -> half-open after this long
    # Each process answers a closed breaker from memory; changes are announced to every process at
    # once, and this bounds how stale a view can get if an announcement is lost.
    recheck_s: float = Field(default=1.0, ge=0)


class AuthDisableConfig(_Strict):
    """How long a deployment stays out of service after a 401/403 (resilience/disabled.py)."""

    ttl_s: float = Field(default=600.0, gt=0)  # then it is tried again (a rotated key)
    # Each process re-reads the shared marks at most this often instead of before every call;
    # the process that sees the auth error skips the deployment at once.
    recheck_s: float = Field(default=1.0, ge=0)


class RateLimitConfig(_Strict):
    """How the shared rpm/tpm limits of deployments are enforced (resilience/ratelimit.py)."""

    # Seconds of calls that may go at once after idle. 0: evenly spaced, so no 60 s window ever
    # holds more than `rpm` calls; a larger burst trades that for lower latency after idle.
    burst_s: float = Field(default=0.0, ge=0)
    max_wait_s: float = Field(
        default=5.0, ge=0
    )  # wait this long for a slot, else another deployment
    # Reserve against this much less than the configured rpm/tpm: calls reach the provider with
    # jitter, so its own per-minute count can exceed what was reserved by a call.
    headroom: float = Field(default=0.02, ge=0, lt=1)


class CacheConfig(_Strict):
    """Exact-match response cache in Redis: a hit costs nothing and is marked in the result."""

    enabled: bool = True
    ttl_s: int = Field(default=3600, gt=0)
    stale_ttl_s: int = Field(default=86_400, ge=0)  # served only when every deployment failed


class ContextConfig(_Strict):
    """What to do when a prompt fits no deployment of the tier (recorded in the result)."""

    truncation: Literal["drop_oldest", "none"] = "drop_oldest"
    reserve_output_tokens: bool = True


class ConfidenceConfig(_Strict):
    """Which checker scores a tier's answer against its `confidence_threshold` (checkers.py)."""

    # "default": logprobs (or a prior) times answer signals, no call; "judge": a deployment grades
    # the answer (judge.py), one extra call per answered hop.
    checker: Literal["default", "judge"] = "default"
    judge_deployment: str | None = None  # the name of a deployment of any tier; needed by "judge"
    # A judgement slower than this falls back to the default checker's value.
    judge_timeout_s: float = Field(default=10.0, gt=0)


class OutcomesConfig(_Strict):
    """The outcome record each answered task leaves (`store/outcomes.py`, `parjanya outcomes`).

    The record itself is a capped Redis stream entry naming the task; what it says is read from
    the task's result when exported, so an outcome outlives its task's result only as an id.
    """

    enabled: bool = True
    # Export the prompt text; otherwise only its sha256 and the scorer's difficulty features.
    keep_prompt: bool = False
    keep_pii_prompt: bool = False  # ...even when the classifier found PII in it
    retention_s: int = Field(default=7 * 24 * 3600, gt=0)  # older records are trimmed
    max_records: int = Field(default=100_000, gt=0)  # and never more than this many (about)


class ReliabilityConfig(_Strict):
    """The knobs of docs/RELIABILITY.md: leases, delivery caps, timeouts. Same for every pool."""

    lease_ttl_s: float = Field(default=30.0, gt=0)
    max_deliveries: int = Field(default=5, ge=1)
    isolate_after: int = Field(default=2, ge=1)  # unfinished deliveries before a hop runs alone
    requeue_after_s: float = Field(
        default=600.0, gt=0
    )  # a queued hop untouched this long is republished
    reaper_interval_s: float = Field(default=5.0, gt=0)
    result_ttl_s: int = Field(default=7 * 24 * 3600, gt=0)
    idempotency_ttl_s: int = Field(default=24 * 3600, gt=0)
    task_time_limit_s: float = Field(default=300.0, gt=0)
    visibility_timeout_s: float = Field(default=900.0, gt=0)
    max_replays: int = Field(default=5, ge=0)
    # "async": tier hops run on the worker's event loop after the claim, many per process
    # (worker/dispatch.py); "blocking": one hop per Celery thread, acked after the call.
    tier_dispatch: Literal["async", "blocking"] = "async"
    # Also pop the intake queue (and, with async dispatch, tier queues) in batches of this many
    # next to Celery's consumer (worker/feeder.py); 0: Celery's consumer only.
    feeder_batch: int = Field(default=64, ge=0, le=1000)
    # Tier hops in flight per worker process with async dispatch (`parjanya worker -c` overrides).
    max_inflight: int = Field(default=1000, ge=1)
    # Celery threads of an async tier pool: they only claim and hand off, so a few keep up.
    admitting_threads: int = Field(default=4, ge=1)
    # Bounds on one message read from a queue: bytes and JSON nesting (broker/decode.py). A message
    # over either is dead-lettered unparsed.
    max_message_bytes: int = Field(default=1 << 20, ge=1024)
    max_message_depth: int = Field(default=32, ge=4, le=500)
    # Bytes of an unreadable message kept in its dead letter.
    dead_letter_raw_bytes: int = Field(default=4096, ge=64, le=1 << 20)
    # A worker whose feeders have not polled their queue for this long is not alive (`parjanya
    # alive`); its heartbeat is refreshed every third of it.
    liveness_stale_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _visibility_covers_tasks(self) -> ReliabilityConfig:
        if self.visibility_timeout_s < 2 * self.task_time_limit_s:
            raise ValueError(
                "visibility_timeout_s must be at least 2 x task_time_limit_s, or Redis redelivers "
                "messages that are still running (docs/RELIABILITY.md, mode 4)"
            )
        return self


class ApiConfig(_Strict):
    """The HTTP API (`parjanya api`, and `parjanya up` on :8000)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65_535)
    # A body larger than this is refused with 413 before it is parsed (4 MiB: the default
    # limits.max_request_bytes, which bounds a submitted request as JSON).
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # POST /v1/chat/completions waits this long for the answer, then answers 504 with the task id.
    chat_timeout_s: float = Field(default=60.0, gt=0)
    # GET /v1/tasks/{id}?wait=S waits at most this long, whatever S asks for.
    max_wait_s: float = Field(default=60.0, gt=0)
    # /readyz asks the workers at most this often; other probes in between get the cached answer.
    ready_cache_s: float = Field(default=2.0, ge=0)


def _sim_deployment(name: str, price_in: float, price_out: float, window: int) -> Deployment:
    return Deployment(
        name=name,
        base_url=f"http://127.0.0.1:{DEFAULT_SIM_PORT}/v1",
        model=name,
        price_in_per_mtok=price_in,
        price_out_per_mtok=price_out,
        context_window=window,
        capabilities=["chat", "code", "json"],
        timeout_s=30.0,
    )


def _default_tiers() -> dict[Tier, TierConfig]:
    return {
        "low": TierConfig(deployments=[_sim_deployment("sim-small", 0.15, 0.60, 16_000)]),
        "mid": TierConfig(deployments=[_sim_deployment("sim-medium", 1.0, 4.0, 64_000)]),
        "high": TierConfig(deployments=[_sim_deployment("sim-large", 5.0, 20.0, 200_000)]),
    }


class ParjanyaConfig(_Strict):
    tiers: dict[Tier, TierConfig] = Field(default_factory=_default_tiers)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    auth_disable: AuthDisableConfig = Field(default_factory=AuthDisableConfig)
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    confidence: ConfidenceConfig = Field(default_factory=ConfidenceConfig)
    context: ContextConfig = Field(default_factory=ContextConfig)
    outcomes: OutcomesConfig = Field(default_factory=OutcomesConfig)
    reliability: ReliabilityConfig = Field(default_factory=ReliabilityConfig)
    # Bounds on a submitted request (limits.py); they may be lowered here, never raised.
    limits: RequestLimits = Field(default_factory=RequestLimits)
    api: ApiConfig = Field(default_factory=ApiConfig)

    @model_validator(mode="after")
    def _every_tier_present(self) -> ParjanyaConfig:
        missing = [t for t in TIERS if t not in self.tiers]
        if missing:
            raise ValueError(f"tiers {missing} have no deployments")
        return self

    @model_validator(mode="after")
    def _judge_is_configured(self) -> ParjanyaConfig:
        name = self.confidence.judge_deployment
        if self.confidence.checker == "judge" and name is None:
            raise ValueError("confidence.checker 'judge' needs confidence.judge_deployment")
        if name is not None:
            try:
                self.deployment(name)
            except KeyError:
                raise ValueError(
                    f"confidence.judge_deployment {name!r} is not a configured deployment"
                ) from None
        return self

    @model_validator(mode="after")
    def _shadow_judge_is_a_deployment(self) -> ParjanyaConfig:
        name = self.routing.shadow_judge
        if name is not None and name not in {
            d.name for t in self.tiers.values() for d in t.deployments
        }:
            raise ValueError(f"routing.shadow_judge {name!r} is not a configured deployment")
        return self

    def deployment(self, name: str) -> Deployment:
        for tier in self.tiers.values():
            for deployment in tier.deployments:
                if deployment.name == name:
                    return deployment
        raise KeyError(name)


_ENV_PATTERN = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::-(?P<default>[^}]*))?\}")


def expand_env(value: Any) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string of a parsed YAML tree."""
    if isinstance(value, str):
        return _ENV_PATTERN.sub(
            lambda m: os.environ.get(m["name"], m["default"] if m["default"] is not None else ""),
            value,
        )
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    return value


def default_config_path() -> Path | None:
    """`config/parjanya.yaml` in the working directory, else the one of this source checkout."""
    for candidate in (
        Path.cwd() / "config" / "parjanya.yaml",
        Path(__file__).resolve().parents[2] / "config" / "parjanya.yaml",
    ):
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path | None = None) -> ParjanyaConfig:
    path = path or Settings().config or default_config_path()
    if path is None:
        return ParjanyaConfig()
    raw = yaml.safe_load(Path(path).read_text()) or {}
    return ParjanyaConfig.model_validate(expand_env(raw))


@lru_cache(maxsize=1)
def get_config() -> ParjanyaConfig:
    """The process-wide policy, loaded once. Tests that change it call `get_config.cache_clear()`."""
    return load_config()


def get_settings() -> Settings:
    return Settings()
