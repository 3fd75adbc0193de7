"""The Anthropic Messages adapter: `ChatRequest` → `POST {base_url}/messages` → `ChatResponse`.

Like the OpenAI adapter it translates and classifies, nothing more; `base_url` is the API root
with its version, e.g. `https://api.anthropic.com/v1`. The translation, both ways:

- System (and developer) messages are lifted into the top-level `system` field, joined by a blank
  line. Everything else becomes alternating user/assistant turns of content blocks: an assistant
  message's `tool_calls` are `tool_use` blocks (arguments parsed into `input`), a `tool` message is
  a user turn's `tool_result` block answering its `tool_call_id`, and consecutive turns of one
  role are merged, since Anthropic wants the roles to alternate.
- `max_tokens` is always sent (Anthropic requires it); `stop` → `stop_sequences`; `temperature` is
  capped at 1.0, the top of Anthropic's range (OpenAI's goes to 2).
- Tools: OpenAI's `{"type": "function", "function": {name, description, parameters}}` →
  `{name, description, input_schema}`. `tool_choice`: "auto" → auto, "required" → any, a named
  function → that tool, "none" → the tools are not sent at all.
- JSON mode: Anthropic has none, so a JSON request adds an instruction to `system`, and a reply
  wrapped whole in a markdown code fence is unwrapped. There is deliberately no "{" prefill: newer
  models refuse a prefilled assistant turn with a 400, a prefill would stop the model from calling
  a tool, and it could not follow a conversation that already ends with an assistant turn.
- Reply: text blocks joined → `text`, `tool_use` blocks → `ToolCall(arguments=json.dumps(input))`,
  `stop_reason` → OpenAI's finish reasons, `usage` → tokens. There are no logprobs (None), so the
  confidence checker falls back to what it does without them.

Failures: `map_failure` is the one place for statuses, error types and transport exceptions, the
latter via `providers.http`. A 529 `overloaded_error` is a ServerError, not a RateLimited: it is
Anthropic out of capacity for everyone, not this key over its quota, so waiting on the same
deployment rarely helps while falling back to another one does, and it should count against the
deployment's breaker. A "refusal" stop reason is ContentFiltered.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from parjanya.config import Deployment
from parjanya.providers.base import (
    AuthError,
    BadRequest,
    ChatRequest,
    ChatResponse,
    ContentFiltered,
    ContextTooLong,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    ServerError,
    redact,
)
from parjanya.providers.http import (
    api_key,
    by_status_class,
    malformed,
    map_exception,
    parse_retry_after,
    post_json,
)
from parjanya.providers.transport import JsonPoster, Reply, as_poster
from parjanya.schema import ChatMessage, ToolCall

__all__ = [
    "ANTHROPIC_VERSION",
    "JSON_INSTRUCTION",
    "AnthropicProvider",
    "build_payload",
    "map_failure",
    "parse_message",
]

ANTHROPIC_VERSION = "2023-06-01"

#: Added to `system` when the request wants JSON (Anthropic has no response_format).
JSON_INSTRUCTION = (
    "Respond with one JSON object and nothing else: no prose before or after it, no code fences."
)

MAX_TEMPERATURE = 1.0

#: Anthropic `error.type` values, whatever the status.
_TYPE_ERRORS: dict[str, type[ProviderError]] = {
    "authentication_error": AuthError,
    "permission_error": AuthError,
    "billing_error": AuthError,  # out of credit: no retry helps until someone acts
    "request_too_large": ContextTooLong,
    "not_found_error": BadRequest,
    "api_error": ServerError,
    "overloaded_error": ServerError,  # see the module docstring: capacity, not our quota
    "timeout_error": ProviderTimeout,
}

#: Statuses whose meaning does not depend on the body (gateways answer them in HTML).
_STATUS_ERRORS: dict[int, type[ProviderError]] = {
    401: AuthError,
    402: AuthError,
    403: AuthError,
    408: ProviderTimeout,
    413: ContextTooLong,  # request_too_large, answered by the CDN before the API sees it
    504: ProviderTimeout,
    529: ServerError,
}

#: How an invalid_request_error says the prompt does not fit ("prompt is too long: 210000 tokens >
#: 200000 maximum", "input length and `max_tokens` exceed context limit: ...").
_CONTEXT_MESSAGE = re.compile(
    r"prompt is too long|context (?:window|limit|length)|too many (?:input )?tokens", re.I
)

#: OpenAI's string tool_choice values ("none" is handled by not sending the tools at all).
_TOOL_CHOICES: dict[str, dict[str, str]] = {"auto": {"type": "auto"}, "required": {"type": "any"}}

#: stop_reason → the finish_reason vocabulary of `ChatResponse` (OpenAI's); others pass through.
_STOP_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
}

#: stop_reason values that make a 200 a failure.
_STOP_ERRORS: dict[str, type[ProviderError]] = {"refusal": ContentFiltered}

_FENCED = re.compile(r"\A\s*```(?:json)?[ \t]*\n(?P<body>.*?)\n?```\s*\Z", re.S | re.I)


# --- request -------------------------------------------------------------------------------------


def _tool_use(call: ToolCall, deployment: str) -> dict[str, Any]:
    """An OpenAI tool call (arguments as JSON text) as Anthropic's block (input as an object)."""
    try:
        arguments = json.loads(call.arguments or "{}")
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        raise BadRequest(
            f"tool call {call.id} has arguments that are not a JSON object", deployment=deployment
        )
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}


def _blocks(message: ChatMessage, deployment: str) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [
            {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.content}
        ]
    text = [{"type": "text", "text": message.content}] if message.content else []
    return text + [_tool_use(call, deployment) for call in message.tool_calls]


def _turns(messages: list[ChatMessage], deployment: str) -> list[dict[str, Any]]:
    """Non-system messages as alternating turns; tool results first in a turn, as required."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role in ("system", "developer"):
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message, deployment)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        turn["content"].sort(key=lambda block: block["type"] != "tool_result")  # stable
    return turns


def _system(request: ChatRequest) -> str | None:
    parts = [m.content for m in request.messages if m.role in ("system", "developer") and m.content]
    if request.response_format == "json":
        parts.append(JSON_INSTRUCTION)
    return "\n\n".join(parts) or None


def _tool(spec: dict[str, JsonValue], deployment: str) -> dict[str, Any]:
    function = spec.get("function")
    if spec.get("type", "function") != "function" or not isinstance(function, dict):
        raise BadRequest(f"tool {spec.get('type')!r} is not a function tool", deployment=deployment)
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest("a function tool has no name", deployment=deployment)
    tool: dict[str, Any] = {
        "name": name,
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if isinstance(function.get("description"), str):
        tool["description"] = function["description"]
    return tool


def _tool_choice(choice: JsonValue, deployment: str) -> dict[str, Any] | None:
    """OpenAI's tool_choice as Anthropic's; None leaves Anthropic's default, which is auto."""
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        return dict(_TOOL_CHOICES[choice])
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            return {"type": "tool", "name": name}
    raise BadRequest(f"tool_choice {choice!r} has no Anthropic equivalent", deployment=deployment)


def _tools_fields(request: ChatRequest, deployment: str) -> dict[str, Any]:
    if not request.tools or request.tool_choice == "none":
        return {}
    fields: dict[str, Any] = {"tools": [_tool(spec, deployment) for spec in request.tools]}
    choice = _tool_choice(request.tool_choice, deployment)
    if choice is not None:
        fields["tool_choice"] = choice
    return fields


def build_payload(deployment: Deployment, request: ChatRequest) -> dict[str, Any]:
    """The JSON body of the call (`BadRequest` for tools or calls Anthropic cannot express)."""
    temperature = request.temperature
    optional: dict[str, Any] = {
        "system": _system(request),
        "stop_sequences": request.stop or None,
        "temperature": None if temperature is None else min(temperature, MAX_TEMPERATURE),
    }
    return {
        "model": deployment.model,
        "max_tokens": request.max_tokens,
        "messages": _turns(request.messages, deployment.name),
        **{k: v for k, v in optional.items() if v is not None},
        **_tools_fields(request, deployment.name),
    }


# --- response ------------------------------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Block(_Wire):
    type: str
    text: str | None = None  # text blocks
    id: str | None = None  # tool_use blocks: id, name, input
    name: str | None = None
    input: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _complete(self) -> _Block:
        if self.type == "text" and self.text is None:
            raise ValueError("a text block without text")
        if self.type == "tool_use" and (self.id is None or self.name is None or self.input is None):
            raise ValueError("a tool_use block without id, name or input")
        return self


class _Usage(_Wire):
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)


class _Message(_Wire):
    type: Literal["message"] = "message"
    id: str | None = None
    model: str | None = None
    content: list[_Block]
    stop_reason: str | None = None
    usage: _Usage | None = None


class _ErrorDetail(_Wire):
    type: str = ""
    message: str = ""


class _ErrorBody(_Wire):
    error: _ErrorDetail


def _unfence(text: str) -> str:
    match = _FENCED.match(text)
    return match["body"] if match else text


def parse_message(
    response: Reply,
    *,
    deployment: Deployment,
    request: ChatRequest,
    latency_s: float,
    secret: str | None = None,
) -> ChatResponse:
    """Read a 2xx body; a body that is not a usable message is an error, not an empty answer."""
    try:
        body = _Message.model_validate_json(response.content)
    except ValidationError as exc:
        raise malformed(response, exc, what="a message", deployment=deployment.name) from None
    reason = body.stop_reason or ""
    stop_error = _STOP_ERRORS.get(reason)
    if stop_error is not None:
        raise stop_error(
            redact(f"stop_reason {reason!r}", secret),
            deployment=deployment.name,
            status=response.status_code,
        )
    text = "".join(b.text or "" for b in body.content if b.type == "text")
    usage = body.usage or _Usage()
    return ChatResponse(
        text=_unfence(text) if request.response_format == "json" else text,
        finish_reason=_STOP_REASONS.get(reason, body.stop_reason),
        model=body.model or deployment.model,
        tokens_in=usage.input_tokens,
        tokens_out=usage.output_tokens,
        logprobs=None,
        response_id=body.id,
        latency_s=latency_s,
        deployment=deployment.name,
        tool_calls=[
            ToolCall(id=b.id or "", name=b.name or "", arguments=json.dumps(b.input))
            for b in body.content
            if b.type == "tool_use"
        ],
    )


# --- failures ------------------------------------------------------------------------------------


def _error_detail(response: Reply) -> tuple[str, str]:
    """(Anthropic error type, human message) from an error body, tolerating non-JSON bodies."""
    try:
        detail = _ErrorBody.model_validate_json(response.content).error
    except ValidationError:
        return "", response.text[:200].strip()
    return detail.type, detail.message[:300]


def map_failure(
    failure: Reply | BaseException, *, deployment: str, secret: str | None = None
) -> ProviderError:
    """Classify a non-2xx response or a transport exception into the taxonomy. The one place."""
    if isinstance(failure, BaseException):
        return map_exception(failure, deployment=deployment, secret=secret)
    status = failure.status_code
    kind, detail = _error_detail(failure)
    message = redact(f"HTTP {status}: {detail}" if detail else f"HTTP {status}", secret)
    if status == 429 or kind == "rate_limit_error":
        retry_after = parse_retry_after(failure.headers)
        return RateLimited(message, deployment=deployment, status=status, retry_after=retry_after)
    too_long = kind == "invalid_request_error" and _CONTEXT_MESSAGE.search(detail) is not None
    cls = (
        (ContextTooLong if too_long else None)
        or _TYPE_ERRORS.get(kind)
        or _STATUS_ERRORS.get(status)
        or by_status_class(status)
    )
    return cls(message, deployment=deployment, status=status)


# --- the adapter ---------------------------------------------------------------------------------


class AnthropicProvider:
    """`Provider` for one Anthropic Messages deployment, over a client the caller owns and closes."""

    def __init__(self, deployment: Deployment, client: JsonPoster | httpx.AsyncClient) -> None:
        self.deployment = deployment
        self._client = as_poster(client)

    def __repr__(self) -> str:
        return f"AnthropicProvider(deployment={self.deployment.name!r})"

    async def chat(self, request: ChatRequest) -> ChatResponse:
        key = api_key(self.deployment)
        headers = {"anthropic-version": ANTHROPIC_VERSION, "content-type": "application/json"}
        if key:
            headers["x-api-key"] = key
        url = f"{self.deployment.base_url.rstrip('/')}/messages"
        payload = build_payload(self.deployment, request)
        response, latency_s = await post_json(
            self._client, self.deployment, url, payload, headers=headers, secret=key
        )
        if not response.is_success:
            raise map_failure(response, deployment=self.deployment.name, secret=key)
        return parse_message(
            response,
            deployment=self.deployment,
            request=request,
            latency_s=latency_s,
            secret=key,
        )
