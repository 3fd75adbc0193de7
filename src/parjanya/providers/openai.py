"""The OpenAI chat-completions adapter (also any OpenAI-compatible server: vLLM, the sim, gateways).

It translates and classifies, nothing more: `ChatRequest` → `POST {base_url}/chat/completions` →
`ChatResponse`, and every failure → one type of the `base` tree. Classification of statuses and
transport exceptions lives in `map_failure` alone; what a 2xx body can still get wrong (not
JSON, missing fields, a content-filter finish) is decided in `parse_completion`. Retrying, falling
back and pricing belong to the caller.

Tools pass through as they are (the request's tools are OpenAI's format already); a reply's
`message.tool_calls` become `ToolCall`s, with `content` null and finish_reason "tool_calls".

The key is read from the environment on each call (so a rotated key needs no restart), sent only in
the Authorization header, never stored on the adapter, and scrubbed from every error message.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from parjanya.config import Deployment
from parjanya.providers.base import (
    AuthError,
    ChatRequest,
    ChatResponse,
    ContentFiltered,
    ContextTooLong,
    ProviderError,
    ProviderTimeout,
    RateLimited,
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
    "OpenAIProvider",
    "build_payload",
    "map_failure",
    "parse_completion",
    "parse_retry_after",  # re-exported from `providers.http`, where it now lives
]

#: Statuses whose meaning does not depend on the body.
_STATUS_ERRORS: dict[int, type[ProviderError]] = {
    401: AuthError,
    403: AuthError,
    408: ProviderTimeout,
    413: ContextTooLong,  # the body itself was too large for the gateway
    504: ProviderTimeout,
}

#: OpenAI `error.code` values that say more than a 4xx status does.
_CODE_ERRORS: dict[str, type[ProviderError]] = {
    "context_length_exceeded": ContextTooLong,
    "string_above_max_length": ContextTooLong,
    "content_filter": ContentFiltered,  # Azure OpenAI
    "content_policy_violation": ContentFiltered,
    "invalid_api_key": AuthError,
}

#: finish_reason values that make a 200 a failure.
_FINISH_ERRORS: dict[str, type[ProviderError]] = {"content_filter": ContentFiltered}


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _TokenLogprob(_Wire):
    logprob: float


class _Logprobs(_Wire):
    content: list[_TokenLogprob] | None = None


class _Function(_Wire):
    name: str
    arguments: str = ""  # JSON text, as the model produced it (it may not parse)


class _ToolCall(_Wire):
    id: str
    function: _Function


class _Message(_Wire):
    content: str | None  # required key; null when the model refused or only called tools
    refusal: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(_Wire):
    message: _Message
    finish_reason: str | None = None
    logprobs: _Logprobs | None = None


class _Usage(_Wire):
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)


class _Completion(_Wire):
    id: str | None = None
    model: str | None = None
    choices: list[_Choice] = Field(min_length=1)
    usage: _Usage | None = None


class _ErrorDetail(_Wire):
    message: str = ""
    code: str | int | None = None


class _ErrorBody(_Wire):
    error: _ErrorDetail


def _error_detail(response: Reply) -> tuple[str | None, str]:
    """(OpenAI error code, human message) from an error body, tolerating non-JSON bodies."""
    try:
        detail = _ErrorBody.model_validate_json(response.content).error
    except ValidationError:
        return None, response.text[:200].strip()
    return (str(detail.code) if detail.code is not None else None), detail.message[:300]


def map_failure(
    failure: Reply | BaseException, *, deployment: str, secret: str | None = None
) -> ProviderError:
    """Classify a non-2xx response or a transport exception into the taxonomy. The one place."""
    if isinstance(failure, BaseException):
        return map_exception(failure, deployment=deployment, secret=secret)
    status = failure.status_code
    code, detail = _error_detail(failure)
    message = redact(f"HTTP {status}: {detail}" if detail else f"HTTP {status}", secret)
    if status == 429:
        retry_after = parse_retry_after(failure.headers)
        return RateLimited(message, deployment=deployment, retry_after=retry_after)
    by_code = _CODE_ERRORS.get(code or "") if 400 <= status < 500 else None
    cls = by_code or _STATUS_ERRORS.get(status) or by_status_class(status)
    return cls(message, deployment=deployment, status=status)


def _message(message: ChatMessage) -> dict[str, Any]:
    """OpenAI's wire shape: tool calls nested under `function`, null content beside them."""
    body: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name is not None:
        body["name"] = message.name
    if message.tool_call_id is not None:
        body["tool_call_id"] = message.tool_call_id
    if message.tool_calls:
        body["content"] = message.content or None
        body["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    return body


def build_payload(deployment: Deployment, request: ChatRequest) -> dict[str, Any]:
    """The JSON body of the call; optional fields are left out rather than sent as null."""
    tools = request.tools or None
    optional: dict[str, Any] = {
        "temperature": request.temperature,
        "stop": request.stop or None,
        "logprobs": True if request.logprobs else None,
        "response_format": {"type": "json_object"} if request.response_format == "json" else None,
        "tools": tools,
        "tool_choice": request.tool_choice if tools else None,  # alone, OpenAI refuses it
    }
    return {
        "model": deployment.model,
        "messages": [_message(m) for m in request.messages],
        "max_tokens": request.max_tokens,
        **{k: v for k, v in optional.items() if v is not None},
    }


def parse_completion(
    response: Reply, *, deployment: Deployment, latency_s: float, secret: str | None = None
) -> ChatResponse:
    """Read a 2xx body; a body that is not a usable completion is an error, not an empty answer."""
    try:
        body = _Completion.model_validate_json(response.content)
    except ValidationError as exc:
        raise malformed(
            response, exc, what="a chat completion", deployment=deployment.name
        ) from None
    choice = body.choices[0]
    finish_error = _FINISH_ERRORS.get(choice.finish_reason or "")
    if finish_error is not None:
        raise finish_error(
            redact(f"finish_reason {choice.finish_reason!r}", secret),
            deployment=deployment.name,
            status=response.status_code,
        )
    tokens = choice.logprobs.content if choice.logprobs is not None else None
    usage = body.usage or _Usage()
    return ChatResponse(
        text=choice.message.content or choice.message.refusal or "",
        finish_reason=choice.finish_reason,
        model=body.model or deployment.model,
        tokens_in=usage.prompt_tokens,
        tokens_out=usage.completion_tokens,
        logprobs=[t.logprob for t in tokens] if tokens else None,
        response_id=body.id,
        latency_s=latency_s,
        deployment=deployment.name,
        tool_calls=[
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
            for c in choice.message.tool_calls or []
        ],
    )


class OpenAIProvider:
    """`Provider` for one OpenAI-compatible deployment, over a client the caller owns and closes."""

    def __init__(self, deployment: Deployment, client: JsonPoster | httpx.AsyncClient) -> None:
        self.deployment = deployment
        self._client = as_poster(client)

    def __repr__(self) -> str:
        return f"OpenAIProvider(deployment={self.deployment.name!r})"

    async def chat(self, request: ChatRequest) -> ChatResponse:
        key = api_key(self.deployment)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        url = f"{self.deployment.base_url.rstrip('/')}/chat/completions"
        payload = build_payload(self.deployment, request)
        response, latency_s = await post_json(
            self._client, self.deployment, url, payload, headers=headers, secret=key
        )
        if not response.is_success:
            raise map_failure(response, deployment=self.deployment.name, secret=key)
        return parse_completion(
            response, deployment=self.deployment, latency_s=latency_s, secret=key
        )
