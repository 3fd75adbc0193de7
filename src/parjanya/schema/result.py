"""What the store keeps about a task and callers read: its routing, attempts, timings and result."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    Field,
    JsonValue,
)

from parjanya.queues import Tier
from parjanya.schema.base import Strict, TaskStatus, utcnow
from parjanya.schema.request import ToolCall

Score = Annotated[float, Field(ge=0, le=10)]


class DimensionScores(Strict):
    """The five complexity dimensions, each 0-10."""

    structural: Score
    cognitive: Score
    context: Score
    ambiguity: Score
    risk: Score


class Complexity(Strict):
    score: float = Field(ge=1, le=10)
    dimensions: DimensionScores
    domain: str
    pii: list[str] = Field(default_factory=list)
    scorer: str = "features-v1"


class RoutingDecision(Strict):
    """What the classifier decided, and why: kept with the result so a route can be audited."""

    tier: Tier
    complexity: Complexity
    reasons: list[str] = Field(default_factory=list)
    max_tier: Tier = "high"
    estimated_input_tokens: int = 0


class ErrorInfo(Strict):
    type: str
    message: str


class Attempt(Strict):
    """One try at one deployment (or one classifier pass): the unit of a task's history."""

    hop: int
    stage: str  # "intake" or a tier name
    tier: Tier | None = None
    deployment: str | None = None
    model: str | None = None
    outcome: Literal[
        "ok", "cached", "low_confidence", "error", "classified", "rejected", "dead_lettered"
    ]
    error_type: str | None = None
    error: str | None = None
    confidence: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    started_at: datetime
    finished_at: datetime


class HopTiming(Strict):
    hop: int
    stage: str
    queued_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def wait_s(self) -> float | None:
        return (
            None if self.started_at is None else (self.started_at - self.queued_at).total_seconds()
        )

    @property
    def run_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class PriorAnswer(Strict):
    """A cheaper tier's answer, carried up an escalation so the caller can compare."""

    tier: Tier
    model: str
    output: str
    confidence: float


class Truncation(Strict):
    """The prompt was cut to fit a deployment: what policy, and how much."""

    policy: str
    dropped_messages: int
    tokens_before: int
    tokens_after: int


class TaskResult(Strict):
    """The one document per task id, across all hops. The store holds it; clients read it."""

    id: str
    status: TaskStatus
    output: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    cached: bool = False  # answered from the response cache: cost 0
    truncated: Truncation | None = None
    model: str | None = None
    deployment: str | None = None
    tier_path: list[Tier] = Field(default_factory=list)
    complexity: Complexity | None = None
    routing: RoutingDecision | None = None
    confidence: float | None = None
    low_confidence: bool = False
    escalations: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    timings: list[HopTiming] = Field(default_factory=list)
    attempts: list[Attempt] = Field(default_factory=list)
    previous_answers: list[PriorAnswer] = Field(default_factory=list)
    error: ErrorInfo | None = None
    replays: int = 0
    tenant: str | None = None
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    # Set on a shadow run (learn/shadow.py): the task it re-asks one tier up. A task of its own, with
    # its own state and fencing token, so it can never write the original's; billed, compared,
    # never returned to the original's caller.
    shadow_of: str | None = None

    @property
    def done(self) -> bool:
        return self.status.terminal
