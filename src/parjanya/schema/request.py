"""What producers submit: a task's request, its messages and tools, bounded as a whole.

Bad input fails at the producer with a message that names the field, before anything is
enqueued. A `TaskRequest` is bounded as a whole (`limits.py`: its serialised size, metadata,
identifiers, tools, stop sequences, JSON depth) and refuses NaN and infinity anywhere, since JSON
would store them as null.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    model_validator,
)
from pydantic_core import to_json

from parjanya.limits import DEFAULT_LIMITS, RequestLimits, json_problem
from parjanya.queues import TIERS, Tier
from parjanya.schema.base import Sla, Strict


class ToolCall(Strict):
    """A function call a model made. Accepts OpenAI's nested wire shape as well as this flat one."""

    id: str
    name: str
    arguments: str  # JSON text, as the model produced it

    @model_validator(mode="before")
    @classmethod
    def _from_openai_shape(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("function"), dict):
            if data.get("type", "function") != "function":
                raise ValueError(f"tool call type {data.get('type')!r} is not 'function'")
            function = data["function"]
            return {
                "id": data.get("id"),
                "name": function.get("name"),
                "arguments": function.get("arguments", "{}"),
            }
        return data


class ChatMessage(Strict):
    """One message in OpenAI chat format: text, an assistant's tool calls, or a tool's result.

    A multi-turn tool conversation is what agent frameworks send: the assistant message carries
    the `tool_calls` it made (content may be null), and each `tool` message names the call it
    answers with `tool_call_id`. Both adapters translate these (Anthropic: `tool_use` blocks in
    the assistant turn, `tool_result` blocks in the next user turn).
    """

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str = ""
    name: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)  # assistant: the calls it made
    tool_call_id: str | None = Field(default=None, min_length=1)  # tool: the call it answers

    @model_validator(mode="before")
    @classmethod
    def _null_content_is_empty(cls, data: Any) -> Any:
        if isinstance(data, dict) and "content" in data and data["content"] is None:
            return {**data, "content": ""}
        return data

    @model_validator(mode="after")
    def _tool_fields_match_the_role(self) -> ChatMessage:
        if self.role == "tool" and self.tool_call_id is None:
            raise ValueError("a tool message needs the tool_call_id of the call it answers")
        if self.role != "tool" and self.tool_call_id is not None:
            raise ValueError("tool_call_id belongs on a tool message only")
        if self.role != "assistant" and self.tool_calls:
            raise ValueError("tool_calls belong on an assistant message only")
        return self


def _callback_url(url: str) -> str:
    """An absolute http(s) URL with a host and no credentials. Where it points (a private
    address, say) is checked when the callback is sent, after its name is resolved."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("callback_url must be an http or https URL")
    if not parts.hostname:
        raise ValueError("callback_url has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("callback_url must not carry credentials")
    try:
        parts.port  # noqa: B018  # raises on a port that is not a number in range
    except ValueError as exc:
        raise ValueError(f"callback_url: {exc}") from None
    return url


CallbackUrl = Annotated[str, Field(min_length=1, max_length=2048), AfterValidator(_callback_url)]


class Constraints(Strict):
    """Hard requirements on the deployment that may answer (governance/capabilities.py).

    Tools and JSON mode are implied by the request (`tools`, `response_format`); list others
    (`vision`, `code`, ...) here. A task no configured deployment can serve is refused at submit.
    """

    capabilities: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=16
    )
    residency: str | None = Field(default=None, min_length=1, max_length=32)
    max_cost_usd: float | None = Field(default=None, gt=0)  # per call, estimated before it
    max_latency_s: float | None = Field(default=None, gt=0)  # the deployment's expected latency


class TaskRequest(Strict):
    """What a producer submits. Exactly one of `messages` or `prompt`.

    Validation takes the bounds from the validation context (`context={"limits": RequestLimits}`,
    what `Client.submit` passes from config) or else the built-in `DEFAULT_LIMITS`. An instance is
    validated again whenever it is passed to `model_validate` (`revalidate_instances`), so one
    changed after it was built is checked again at submit.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, revalidate_instances="always")

    messages: list[ChatMessage] | None = Field(default=None, min_length=1)
    prompt: str | None = Field(default=None, min_length=1)
    task_type: str | None = Field(default=None, max_length=64)
    context_tokens: int | None = Field(
        default=None, ge=0, description="Caller's hint of extra context (files, retrieved docs)."
    )
    sla: Sla = Sla.standard
    deadline_s: float | None = Field(default=None, gt=0, le=86_400)
    budget_usd: float | None = Field(default=None, ge=0)
    min_tier: Tier | None = None
    max_tier: Tier | None = None
    tenant: str | None = Field(default=None, max_length=128)
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=256)
    response_format: Literal["text", "json"] = "text"
    max_output_tokens: int = Field(default=1024, ge=1, le=128_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    stop: list[str] | None = None
    tools: list[dict[str, JsonValue]] | None = Field(
        default=None, description="OpenAI-format tool definitions ({'type': 'function', ...})."
    )
    tool_choice: JsonValue = None
    cache: bool = Field(default=True, description="False: never answer from the response cache.")
    callback_url: CallbackUrl | None = Field(
        default=None,
        description="Gets a signed POST of the result when the task ends (README: Webhooks).",
    )
    constraints: Constraints = Field(default_factory=Constraints)

    @model_validator(mode="after")
    def _check_shape(self, info: ValidationInfo) -> TaskRequest:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("give exactly one of 'messages' or 'prompt'")
        context = info.context if isinstance(info.context, dict) else {}
        limits = context.get("limits", DEFAULT_LIMITS)
        problem = self.bounds_problem(limits)
        if problem is not None:
            raise ValueError(problem)
        if (
            self.min_tier is not None
            and self.max_tier is not None
            and TIERS.index(self.min_tier) > TIERS.index(self.max_tier)
        ):
            raise ValueError(f"min_tier {self.min_tier!r} is above max_tier {self.max_tier!r}")
        return self

    def bounds_problem(self, limits: RequestLimits) -> str | None:
        """What breaks one of `limits`, or None. Cheap counts first, the whole size last."""
        size = self.prompt_chars()
        if size > limits.max_prompt_chars:
            return (
                f"prompt is {size} characters; the limit is {limits.max_prompt_chars} "
                "(send large context by reference, or split the task)"
            )
        if self.context_tokens is not None and self.context_tokens > limits.max_context_tokens:
            return (
                f"context_tokens is {self.context_tokens}; the limit is {limits.max_context_tokens}"
            )
        counted = (("stop", self.stop, limits.max_stop), ("tools", self.tools, limits.max_tools))
        for field, items, most in counted:
            if items is not None and len(items) > most:
                return f"{field} has {len(items)} entries; the limit is {most}"
        for name in self._identifiers():
            if len(name) > limits.max_identifier_chars:
                return (
                    f"an identifier (message name, tool call id or name) is {len(name)} "
                    f"characters; the limit is {limits.max_identifier_chars}"
                )
        for field, value in (
            ("metadata", self.metadata),
            ("tools", self.tools),
            ("tool_choice", self.tool_choice),
        ):
            problem = json_problem(value, max_depth=limits.max_json_depth)
            if problem is not None:
                return f"{field}: {problem}"
        metadata_bytes = len(to_json(self.metadata))
        if metadata_bytes > limits.max_metadata_bytes:
            return (
                f"metadata is {metadata_bytes} bytes as JSON; "
                f"the limit is {limits.max_metadata_bytes}"
            )
        total = len(to_json(self))
        if total > limits.max_request_bytes:
            return (
                f"the request is {total} bytes as JSON; the limit is {limits.max_request_bytes} "
                "(send large context by reference, or split the task)"
            )
        return None

    def _identifiers(self) -> list[str]:
        names: list[str] = []
        for message in self.messages or []:
            names.extend(n for n in (message.name, message.tool_call_id) if n is not None)
            names.extend(part for call in message.tool_calls for part in (call.id, call.name))
        return names

    def chat_messages(self) -> list[ChatMessage]:
        if self.messages is not None:
            return list(self.messages)
        assert self.prompt is not None
        return [ChatMessage(role="user", content=self.prompt)]

    def text(self) -> str:
        """All message text joined: what the classifier reads."""
        return "\n".join(m.content for m in self.chat_messages())

    def prompt_chars(self) -> int:
        if self.prompt is not None:
            return len(self.prompt)
        return sum(len(m.content) for m in self.messages or [])
