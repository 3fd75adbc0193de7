"""How large a submitted request may be: every bound, with its default, in one model.

A request is written to the store once and read back by every pool it visits, so whatever the SDK
lets through is carried, parsed and held in memory by the classifier and each tier. The bounds
therefore cover the whole request, not only its prompt: the serialised size of every field
together, the metadata on its own (it is copied into the result), the length of identifiers, the
number of tools and stop sequences, the `context_tokens` hint, and the nesting depth of free-form
JSON (metadata, tools, tool_choice), which a decoder would otherwise follow until it runs out of
stack.

The defaults below are also ceilings. `schema.TaskRequest` always enforces at least these (a
worker re-validates what it reads from the store with no configuration in hand, so a request
larger than them could be written and then never read back). `config.ParjanyaConfig.limits` may
lower any of them for a deployment; `Client.submit` checks the configured values. Raising one is a
code change here, so every process agrees on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_LIMITS", "RequestLimits", "json_problem"]

#: A prompt larger than this is refused at the producer (about 100k tokens). Deployments have their
#: own context windows; this bound only keeps a runaway caller from filling the broker.
MAX_PROMPT_CHARS = 400_000
#: The whole request as JSON: room for a full prompt of three-byte characters plus tools.
MAX_REQUEST_BYTES = 4 * 1024 * 1024
MAX_METADATA_BYTES = 64 * 1024
MAX_IDENTIFIER_CHARS = 256
MAX_TOOLS = 128  # OpenAI's own limit on tools per request
MAX_STOP = 8
MAX_JSON_DEPTH = 32
MAX_CONTEXT_TOKENS = 10_000_000  # the caller's hint; the largest context windows hold 2M


class RequestLimits(BaseModel):
    """Bounds on one submitted request. Each may be lowered in config, never raised above this."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_request_bytes: int = Field(default=MAX_REQUEST_BYTES, gt=0, le=MAX_REQUEST_BYTES)
    max_prompt_chars: int = Field(default=MAX_PROMPT_CHARS, gt=0, le=MAX_PROMPT_CHARS)
    max_metadata_bytes: int = Field(default=MAX_METADATA_BYTES, ge=2, le=MAX_METADATA_BYTES)
    # A message's name, a tool call's id and name, a tool message's tool_call_id.
    max_identifier_chars: int = Field(default=MAX_IDENTIFIER_CHARS, gt=0, le=MAX_IDENTIFIER_CHARS)
    max_tools: int = Field(default=MAX_TOOLS, ge=0, le=MAX_TOOLS)
    max_stop: int = Field(default=MAX_STOP, ge=0, le=MAX_STOP)
    max_json_depth: int = Field(default=MAX_JSON_DEPTH, ge=1, le=MAX_JSON_DEPTH)
    max_context_tokens: int = Field(default=MAX_CONTEXT_TOKENS, ge=0, le=MAX_CONTEXT_TOKENS)


DEFAULT_LIMITS = RequestLimits()


def json_problem(value: Any, *, max_depth: int) -> str | None:
    """Why a parsed JSON value may not be stored (too deep, a NaN or infinity), or None.

    Iterative, and it stops descending at `max_depth`, so a value nested a million deep costs a
    bounded walk, not a RecursionError. Non-finite floats are refused because JSON has no spelling
    for them: stored, they would come back as null.
    """
    for item, depth in _walk(value):
        if depth > max_depth:
            return f"nested deeper than {max_depth} levels"
        if isinstance(item, float) and not math.isfinite(item):
            return f"{item} is not a finite number"
    return None


def _walk(value: Any) -> Iterator[tuple[Any, int]]:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        yield item, depth
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        # The caller stops at the first item too deep, before its children are pushed.
        stack.extend((child, depth + 1) for child in children)
