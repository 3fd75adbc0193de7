"""OpenAI's chat-completions wire shapes, and their translation to and from Parjanya's.

The request model accepts what the official `openai` client sends: content as a string or a list
of text parts, an assistant message echoed back with `refusal`/`annotations`, and the sampling
options Parjanya does not use (accepted and ignored, listed in `IGNORED`). Anything else is a 422,
as is a `model` that is not one of `MODELS`. Parjanya's own options ride in `parjanya` (the
client's `extra_body`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from parjanya.queues import TIERS, Tier
from parjanya.schema import CallbackUrl, ChatMessage, Constraints, Sla, TaskRequest, TaskResult

#: `parjanya-auto` routes by complexity; `parjanya-<tier>` pins the tier (min_tier = max_tier).
MODELS: dict[str, Tier | None] = {"parjanya-auto": None, **{f"parjanya-{t}": t for t in TIERS}}
ModelName = Literal["parjanya-auto", "parjanya-low", "parjanya-mid", "parjanya-high"]

#: Message fields the client may echo back from a response; they carry nothing Parjanya sends on.
_ECHOED = ("refusal", "annotations", "audio", "function_call")


class OpenAIMessage(ChatMessage):
    """A chat message as OpenAI's clients send it, normalised to Parjanya's `ChatMessage`."""

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {k: v for k, v in data.items() if k not in _ECHOED}
        content = data.get("content")
        if isinstance(content, list):
            texts = []
            for part in content:
                if not isinstance(part, dict) or part.get("type") != "text":
                    raise ValueError("only text content parts are supported")
                texts.append(str(part.get("text", "")))
            data["content"] = "".join(texts)
        return data

    def plain(self) -> ChatMessage:
        return ChatMessage.model_validate(self.model_dump(exclude_none=True))


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow")  # json_schema's schema: passed as JSON mode

    type: Literal["text", "json_object", "json_schema"]


class ParjanyaOptions(BaseModel):
    """Parjanya's task options that have no OpenAI field (send them in `extra_body`)."""

    model_config = ConfigDict(extra="forbid")

    sla: Sla = Sla.standard
    budget_usd: float | None = Field(default=None, ge=0)
    deadline_s: float | None = Field(default=None, gt=0, le=86_400)
    task_type: str | None = Field(default=None, max_length=64)
    context_tokens: int | None = Field(default=None, ge=0)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=256)
    cache: bool = True
    callback_url: CallbackUrl | None = None  # a signed POST of the result when the task ends
    constraints: Constraints = Field(default_factory=Constraints)  # governance/capabilities.py


IGNORED = (
    "top_p",
    "user",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "parallel_tool_calls",
    "stream_options",
    "service_tier",
    "store",
    "reasoning_effort",
)


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelName
    messages: list[OpenAIMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=128_000)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=128_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    stop: str | list[str] | None = None
    tools: list[dict[str, JsonValue]] | None = None
    tool_choice: JsonValue = None
    response_format: ResponseFormat | None = None
    stream: bool = False
    n: int = Field(default=1, ge=1, le=1)
    metadata: dict[str, str] | None = None
    parjanya: ParjanyaOptions = Field(default_factory=ParjanyaOptions)
    # Accepted and ignored (see IGNORED): sampling and bookkeeping options of OpenAI's API.
    top_p: float | None = None
    user: str | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    parallel_tool_calls: bool | None = None
    stream_options: dict[str, JsonValue] | None = None
    service_tier: str | None = None
    store: bool | None = None
    reasoning_effort: str | None = None

    def to_task(self) -> TaskRequest:
        """The task this completion runs as. Raises pydantic's ValidationError (the route: 422)."""
        tier = MODELS[self.model]
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        json_mode = self.response_format is not None and self.response_format.type != "text"
        options = self.parjanya.model_dump(exclude_none=True)
        return TaskRequest(
            messages=[m.plain() for m in self.messages],
            min_tier=tier,
            max_tier=tier,
            max_output_tokens=self.max_completion_tokens or self.max_tokens or 1024,
            temperature=self.temperature,
            stop=stop,
            tools=self.tools,
            tool_choice=self.tool_choice,
            response_format="json" if json_mode else "text",
            metadata=dict(self.metadata or {}),
            **options,
        )


def routing_headers(result: TaskResult) -> dict[str, str]:
    """The routing decision as `x-parjanya-*` headers: the part of it that fits on one line."""
    headers = {"x-parjanya-task-id": result.id, "x-parjanya-status": result.status.value}
    if result.tier_path:
        headers["x-parjanya-tier"] = result.tier_path[-1]
        headers["x-parjanya-tier-path"] = ",".join(result.tier_path)
    if result.complexity is not None:
        headers["x-parjanya-complexity"] = f"{result.complexity.score:.2f}"
    headers["x-parjanya-escalations"] = str(result.escalations)
    headers["x-parjanya-cost-usd"] = f"{result.cost_usd:.8f}"
    headers["x-parjanya-cached"] = "true" if result.cached else "false"
    return headers


def parjanya_field(result: TaskResult) -> dict[str, Any]:
    """The `parjanya` field of a completion: the routing decision and what the task cost."""
    return {
        "task_id": result.id,
        "tier": result.tier_path[-1] if result.tier_path else None,
        "tier_path": list(result.tier_path),
        "complexity": result.complexity.score if result.complexity else None,
        "reasons": result.routing.reasons if result.routing else [],
        "escalations": result.escalations,
        "confidence": result.confidence,
        "low_confidence": result.low_confidence,
        "cached": result.cached,
        "cost_usd": result.cost_usd,
        "deployment": result.deployment,
    }


def completion(result: TaskResult, requested: str) -> dict[str, Any]:
    """A finished task as an OpenAI `chat.completion` object."""
    tool_calls = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in result.tool_calls
    ]
    message: dict[str, Any] = {"role": "assistant", "content": result.output, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": f"chatcmpl-{result.id}",
        "object": "chat.completion",
        "created": int(result.created_at.timestamp()),
        "model": result.model or requested,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if tool_calls else "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": result.tokens_in,
            "completion_tokens": result.tokens_out,
            "total_tokens": result.tokens_in + result.tokens_out,
        },
        "parjanya": parjanya_field(result),
    }
