"""Fitting a prompt into a context window: the estimate a tier skips by, and the truncation policy.

`needed_tokens` is what a deployment's `context_window` must hold: the prompt (chars / 4, the same
estimate as the sim and `base.estimate_tokens`) plus, when `ContextConfig.reserve_output_tokens` is
set, the output budget (`max_tokens`), since real vendors count both against the window.

`drop_oldest` is the one truncation policy: it drops the oldest messages that are neither a system
(or developer) message nor the last user message, until the estimate fits. It returns None when no
cut is needed, or when dropping everything it may drop still does not fit; the caller then fails
over as if the policy were "none". Every cut is described by a `schema.Truncation`.
"""

from __future__ import annotations

from parjanya.config import ContextConfig
from parjanya.providers.base import ChatRequest
from parjanya.resilience.base import estimate_tokens
from parjanya.schema import ChatMessage, Truncation

__all__ = ["drop_oldest", "fit", "needed_tokens"]

_KEPT_ROLES = frozenset({"system", "developer"})


def needed_tokens(request: ChatRequest, context: ContextConfig) -> int:
    """The window `request` needs, by the estimate every part of Parjanya uses."""
    tokens = estimate_tokens(request)
    return tokens if context.reserve_output_tokens else tokens - request.max_tokens


def fit(
    request: ChatRequest, limit: int, context: ContextConfig
) -> tuple[ChatRequest, Truncation] | None:
    """`request` cut to need at most `limit` tokens under `context.truncation`, or None."""
    if context.truncation == "drop_oldest":
        return drop_oldest(request, limit, context)
    return None


def drop_oldest(
    request: ChatRequest, limit: int, context: ContextConfig
) -> tuple[ChatRequest, Truncation] | None:
    """Drop the oldest droppable messages until `request` needs at most `limit` tokens."""
    before = needed_tokens(request, context)
    dropped: set[int] = set()
    fitted = request
    for index in _droppable(request.messages):
        if needed_tokens(fitted, context) <= limit:
            break
        dropped.add(index)
        fitted = _without(request, dropped)
    after = needed_tokens(fitted, context)
    if not dropped or after > limit:
        return None
    return fitted, Truncation(
        policy="drop_oldest",
        dropped_messages=len(dropped),
        tokens_before=before,
        tokens_after=after,
    )


def _droppable(messages: list[ChatMessage]) -> list[int]:
    """Indices, oldest first, of all but system/developer messages and the last user message
    (the last message, if there is no user message: a request is never left empty)."""
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    last_user = users[-1] if users else len(messages) - 1
    return [i for i, m in enumerate(messages) if i != last_user and m.role not in _KEPT_ROLES]


def _without(request: ChatRequest, dropped: set[int]) -> ChatRequest:
    kept = [m for i, m in enumerate(request.messages) if i not in dropped]
    return request.model_copy(update={"messages": kept})
