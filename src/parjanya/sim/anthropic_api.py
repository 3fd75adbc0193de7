"""The Anthropic Messages wire format of the sim: `POST /v1/messages` requests, replies and errors.

Only this module knows Anthropic's field names; `WIRE` is its `wire.WireFormat`, so the models,
difficulty, markers, latency, faults and ledger are exactly those of chat completions. As the real
API does, it requires `max_tokens`, takes the system prompt as a top-level field, caps temperature
at 1, and refuses `stream`. It reads no header: `x-api-key` may be sent or not, and is never kept,
logged or echoed.

Shapes: a reply is a `message` of content blocks (`text`, or `tool_use` when a `[[sim:tool=NAME]]`
marker meets a capable model) with `stop_reason` end_turn / stop_sequence / max_tokens / tool_use /
refusal. Errors are `{"type": "error", "error": {"type", "message"}, "request_id"}`; an outage is
529 `overloaded_error`, a rate limit 429 `rate_limit_error` with `retry-after`, a prompt that does
not fit 400 "prompt is too long: N tokens > M maximum".

Anthropic has no JSON mode; the simulated model answers in JSON when the system prompt asks for
JSON (says "JSON"), as a model following its instructions would.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from parjanya.sim.answers import Answer, FinishReason
from parjanya.sim.exchange import SimResponse, json_response
from parjanya.sim.faults import Fault
from parjanya.sim.wire import ErrorKind, ModelCall

__all__ = ["WIRE", "AnthropicWire", "MessagesRequest", "error_response", "message_body"]

_ASKS_FOR_JSON = re.compile(r"\bJSON\b")


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Block(_Lenient):
    type: str
    text: str | None = None  # text blocks
    content: str | list[Block] | None = None  # tool_result blocks

    def plain(self) -> str:
        """What the model reads of this block: text, or a tool result's text."""
        if self.type == "text":
            return self.text or ""
        if self.type == "tool_result":
            if isinstance(self.content, list):
                return "".join(block.plain() for block in self.content)
            return self.content or ""
        return ""


def _plain(content: str | list[Block] | None) -> str:
    if isinstance(content, list):
        return "".join(block.plain() for block in content)
    return content or ""


class Message(_Lenient):
    role: Literal["user", "assistant"]
    content: str | list[Block]

    def text(self) -> str:
        return _plain(self.content)

    def has_tool_result(self) -> bool:
        return isinstance(self.content, list) and any(b.type == "tool_result" for b in self.content)


class Tool(_Lenient):
    name: str


class ToolChoice(_Lenient):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None


class MessagesRequest(_Lenient):
    model: str
    max_tokens: int = Field(ge=1)  # required, as in the real API
    messages: list[Message] = Field(min_length=1)
    system: str | list[Block] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)  # accepted; answers are fixed
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    stream: Literal[False] = False

    def call(self) -> ModelCall:
        system = _plain(self.system)
        texts = [system] if system else []
        texts += [m.text() for m in self.messages]
        users = [m for m in self.messages if m.role == "user"] or self.messages
        offered = self.tools or []
        if self.tool_choice is not None and self.tool_choice.type == "none":
            offered = []
        return ModelCall(
            model=self.model,
            text="\n".join(texts),
            last_user_text=users[-1].text(),
            prompt_tokens=(sum(len(t) for t in texts) + 3) // 4,
            max_tokens=self.max_tokens,
            stops=tuple(self.stop_sequences or ()),
            json_mode=_ASKS_FOR_JSON.search(system) is not None,
            tools=tuple(tool.name for tool in offered),
            after_tool_result=self.messages[-1].has_tool_result(),
        )


ErrorType = Literal[
    "invalid_request_error",
    "not_found_error",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
    "timeout_error",
]


def error_response(
    status: int, type_: ErrorType, message: str, headers: dict[str, str] | None = None
) -> SimResponse:
    body = {
        "type": "error",
        "error": {"type": type_, "message": message},
        "request_id": f"req_sim_{uuid.uuid4().hex[:24]}",
    }
    return json_response(status, body, headers)


_STOP_REASONS: dict[FinishReason, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def message_body(call: ModelCall, answer: Answer) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if answer.content:
        content.append({"type": "text", "text": answer.content})
    if answer.tool_call is not None:
        tool = answer.tool_call
        content.append(
            {
                "type": "tool_use",
                "id": f"toolu_{tool.id}",
                "name": tool.name,
                "input": tool.arguments,
            }
        )
    stop_reason = "stop_sequence" if answer.stop_sequence else _STOP_REASONS[answer.finish_reason]
    return {
        "id": f"msg_sim_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": answer.stop_sequence,
        "usage": {"input_tokens": call.prompt_tokens, "output_tokens": len(answer.tokens)},
    }


#: How the handler's refusals look here: (status, error type).
_ERRORS: dict[ErrorKind, tuple[int, ErrorType]] = {
    "invalid_request": (400, "invalid_request_error"),
    "model_not_found": (404, "not_found_error"),
    "timeout": (504, "timeout_error"),
}


class AnthropicWire:
    """`wire.WireFormat` for `POST /v1/messages`."""

    def parse(self, body: bytes) -> ModelCall:
        return MessagesRequest.model_validate_json(body).call()

    def error(self, kind: ErrorKind, message: str) -> SimResponse:
        status, type_ = _ERRORS[kind]
        return error_response(status, type_, message)

    def too_long(self, tokens: int, window: int) -> SimResponse:
        message = f"prompt is too long: {tokens} tokens > {window} maximum"
        return error_response(400, "invalid_request_error", message)

    def fault(self, fault: Fault, retry_after_s: float) -> SimResponse:
        if fault is Fault.rate_limited:
            headers = {"retry-after": f"{retry_after_s:g}"}
            message = "Rate limit reached (simulated fault)."
            return error_response(429, "rate_limit_error", message, headers)
        if fault is Fault.server_error:
            return error_response(500, "api_error", "Internal server error (simulated fault).")
        return error_response(529, "overloaded_error", "Overloaded (simulated outage).")

    def answer(self, call: ModelCall, answer: Answer) -> SimResponse:
        return json_response(200, message_body(call, answer))


WIRE = AnthropicWire()
