"""Answer checking, outcome records and the worker runtime's reliability knobs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from parjanya.config.base import Strict


class ConfidenceConfig(Strict):
    """Which checker scores a tier's answer against its `confidence_threshold` (checkers.py)."""

    # "default": logprobs (or a prior) times answer signals, no call; "judge": a deployment grades
    # the answer (judge.py), one extra call per answered hop.
    checker: Literal["default", "judge"] = "default"
    judge_deployment: str | None = None  # the name of a deployment of any tier; needed by "judge"
    # A judgement slower than this falls back to the default checker's value.
    judge_timeout_s: float = Field(default=10.0, gt=0)


class OutcomesConfig(Strict):
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


class ReliabilityConfig(Strict):
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
