"""The OpenAI wire format of the sim: the request bodies it parses and the JSON it returns.

Only this module knows OpenAI's field names; `WIRE` is its `wire.WireFormat`, and
`anthropic_api.py` is the same for Anthropic Messages. Requests ignore fields the sim has no use
for (`user`, `seed`, ...) because real clients send them; fields it cannot honour (`stream`,
`n > 1`) are refused with a 400 rather than answered wrongly. Of `tools` only the names are read:
a `[[sim:tool=NAME]]` marker makes a capable model call one (`message.tool_calls`).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from parjanya.sim.answers import Answer
from parjanya.sim.exchange import SimResponse, json_response
from parjanya.sim.faults import Fault
from parjanya.sim.wire import ErrorKind, ModelCall


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentPart(_Lenient):
    type: str
    text: str | None = None


class Message(_Lenient):
    role: str
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class ResponseFormat(_Lenient):
    type: Literal["text", "json_object", "json_schema"] = "text"


class Function(_Lenient):
    name: str


class Tool(_Lenient):
    type: Literal["function"] = "function"
    function: Function


class ChatCompletionRequest(_Lenient):
    model: str
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)  # accepted; answers are fixed
    stop: str | list[str] | None = None
    response_format: ResponseFormat | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    n: int = Field(default=1, ge=1, le=1)
    stream: Literal[False] = False
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None

    @model_validator(mode="after")
    def _top_needs_logprobs(self) -> ChatCompletionRequest:
        if self.top_logprobs and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs: true")
        return self

    def text(self) -> str:
        """All message text, one message per line."""
        return "\n".join(m.text() for m in self.messages)

    def last_user_text(self) -> str:
        users = [m for m in self.messages if m.role == "user"] or self.messages
        return users[-1].text()

    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def json_mode(self) -> bool:
        return self.response_format is not None and self.response_format.type != "text"

    def prompt_tokens(self) -> int:
        """About four characters a token, over all message content."""
        return (sum(len(m.text()) for m in self.messages) + 3) // 4

    def tool_names(self) -> tuple[str, ...]:
        if self.tool_choice == "none":
            return ()
        return tuple(tool.function.name for tool in self.tools or [])

    def call(self) -> ModelCall:
        return ModelCall(
            model=self.model,
            text=self.text(),
            last_user_text=self.last_user_text(),
            prompt_tokens=self.prompt_tokens(),
            max_tokens=self.output_limit(),
            stops=self.stops(),
            json_mode=self.json_mode(),
            logprobs=self.logprobs,
            top_logprobs=self.top_logprobs or 0,
            tools=self.tool_names(),
            after_tool_result=self.messages[-1].role == "tool",
        )


ErrorType = Literal["invalid_request_error", "not_found_error", "rate_limit_error", "server_error"]


def error_body(message: str, type_: ErrorType, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def error_response(
    status: int,
    message: str,
    type_: ErrorType,
    code: str | None,
    headers: dict[str, str] | None = None,
) -> SimResponse:
    return json_response(status, error_body(message, type_, code), headers)


def fault_response(fault: Fault, retry_after_s: float) -> SimResponse:
    """The immediate answer of a 429 / 500 / 503 fault, as OpenAI would send it."""
    if fault is Fault.rate_limited:
        message = "Rate limit reached (simulated fault)."
        headers = {"retry-after": f"{retry_after_s:g}"}
        return error_response(429, message, "rate_limit_error", "rate_limit_exceeded", headers)
    if fault is Fault.server_error:
        return error_response(500, "Internal error (simulated fault).", "server_error", None)
    return error_response(503, "Service unavailable (simulated outage).", "server_error", None)


def _logprobs(answer: Answer) -> dict[str, Any]:
    return {
        "content": [
            {
                "token": token.text,
                "logprob": token.logprob,
                "bytes": None,
                "top_logprobs": [
                    {"token": text, "logprob": logprob, "bytes": None}
                    for text, logprob in token.top
                ],
            }
            for token in answer.tokens
        ],
        "refusal": None,
    }


def _message(answer: Answer) -> dict[str, Any]:
    call = answer.tool_call
    if call is None:
        return {"role": "assistant", "content": answer.content, "refusal": None}
    return {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {
                "id": f"call_{call.id}",
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
        ],
    }


def completion_body(call: ModelCall, answer: Answer, created: int | None = None) -> dict[str, Any]:
    prompt_tokens = call.prompt_tokens
    completion_tokens = len(answer.tokens)
    wants_logprobs = call.logprobs and answer.tool_call is None
    return {
        "id": f"chatcmpl-sim-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": call.model,
        "system_fingerprint": "parjanya-sim",
        "choices": [
            {
                "index": 0,
                "message": _message(answer),
                "finish_reason": answer.finish_reason,
                "logprobs": _logprobs(answer) if wants_logprobs else None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def models_body(names: list[str], created: int = 0) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": created, "owned_by": "parjanya-sim"}
            for name in names
        ],
    }


#: How the handler's refusals look here: (status, error type, code).
_ERRORS: dict[ErrorKind, tuple[int, ErrorType, str | None]] = {
    "invalid_request": (400, "invalid_request_error", None),
    "model_not_found": (404, "invalid_request_error", "model_not_found"),
    "timeout": (504, "server_error", "timeout"),
}


class OpenAIWire:
    """`wire.WireFormat` for `POST /v1/chat/completions`."""

    def parse(self, body: bytes) -> ModelCall:
        return ChatCompletionRequest.model_validate_json(body).call()

    def error(self, kind: ErrorKind, message: str) -> SimResponse:
        status, type_, code = _ERRORS[kind]
        return error_response(status, message, type_, code)

    def too_long(self, tokens: int, window: int) -> SimResponse:
        message = f"{tokens} prompt tokens exceed {window}."
        return error_response(400, message, "invalid_request_error", "context_length_exceeded")

    def fault(self, fault: Fault, retry_after_s: float) -> SimResponse:
        return fault_response(fault, retry_after_s)

    def answer(self, call: ModelCall, answer: Answer) -> SimResponse:
        return json_response(200, completion_body(call, answer))


WIRE = OpenAIWire()
