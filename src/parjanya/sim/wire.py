"""What a wire module gives the handler: a chat request reduced to what a model needs, and replies.

`handler.py` runs one flow for every model route (parse, model, markers, context window, fault
draw, latency, answer, ledger). An API (OpenAI chat completions, Anthropic messages) only says how
its request reads as a `ModelCall` and how each outcome looks in its own JSON, through
`WireFormat`; so a new API is one module implementing it plus one route entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from parjanya.sim.answers import Answer
from parjanya.sim.exchange import SimResponse
from parjanya.sim.faults import Fault


@dataclass(frozen=True)
class ModelCall:
    """A chat request as the simulated model reads it, whatever API it came through."""

    model: str
    text: str  # all message text, system included, one message per line: markers, difficulty
    last_user_text: str  # what the answer quotes, and the ledger's prompt key
    prompt_tokens: int  # about four characters a token
    max_tokens: int | None = None
    stops: tuple[str, ...] = ()
    json_mode: bool = False
    logprobs: bool = False
    top_logprobs: int = 0
    tools: tuple[str, ...] = ()  # tools the model may call now (none under tool_choice "none")
    after_tool_result: bool = False  # the last message hands a tool's result back


#: Refusals the handler decides on; each API words and shapes them its own way.
ErrorKind = Literal["invalid_request", "model_not_found", "timeout"]


class WireFormat(Protocol):
    """One API's request parsing and response shapes. Implementations hold no state."""

    def parse(self, body: bytes) -> ModelCall:
        """The request; `pydantic.ValidationError` when the body is not one."""
        ...

    def error(self, kind: ErrorKind, message: str) -> SimResponse: ...

    def too_long(self, tokens: int, window: int) -> SimResponse:
        """The API's own "prompt does not fit" 400."""
        ...

    def fault(self, fault: Fault, retry_after_s: float) -> SimResponse:
        """The immediate answer of a 429, 500 or 503-class (outage) fault."""
        ...

    def answer(self, call: ModelCall, answer: Answer) -> SimResponse:
        """The 200 of a composed answer (text, tool call or filtered)."""
        ...
