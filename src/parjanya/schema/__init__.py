"""The data that crosses a boundary: what producers submit, what the store keeps, what callers read.

Everything here is a pydantic v2 model so that bad input fails at the producer with a message that
names the field, before anything is enqueued. Models are strict about unknown fields: a typo in an
option (`max_teir`) must be an error, not a silently ignored setting. A `TaskRequest` is also
bounded as a whole (`limits.py`: its serialised size, metadata, identifiers, tools, stop sequences,
JSON depth) and refuses NaN and infinity anywhere, since JSON would store them as null.

One module per concern, every name importable from here: `base` (strictness, the clock, the
enums, JSON), `request` (what producers submit), `result` (what the store keeps and callers
read), `messages` (hop pointers and dead letters).
"""

from parjanya.schema.base import Sla, Strict, TaskStatus, dump_json, jsonable, utcnow
from parjanya.schema.messages import DeadLetter, HopMessage
from parjanya.schema.request import CallbackUrl, ChatMessage, Constraints, TaskRequest, ToolCall
from parjanya.schema.result import (
    Attempt,
    Complexity,
    DimensionScores,
    ErrorInfo,
    HopTiming,
    PriorAnswer,
    RoutingDecision,
    Score,
    TaskResult,
    Truncation,
)

__all__ = [
    "Attempt",
    "CallbackUrl",
    "ChatMessage",
    "Complexity",
    "Constraints",
    "DeadLetter",
    "DimensionScores",
    "ErrorInfo",
    "HopMessage",
    "HopTiming",
    "PriorAnswer",
    "RoutingDecision",
    "Score",
    "Sla",
    "Strict",
    "TaskRequest",
    "TaskResult",
    "TaskStatus",
    "ToolCall",
    "Truncation",
    "dump_json",
    "jsonable",
    "utcnow",
]
