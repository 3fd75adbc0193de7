"""What every model adapter speaks: one request shape, one response shape, one error tree.

Retry, fallback and breakers decide by exception *type*, never by matching strings, so each adapter
maps its vendor's statuses and transport failures into this tree in one function:

    ProviderError                 error_type
     ├── RateLimited              "rate_limited"        429; carries retry_after (seconds) if known
     ├── ProviderTimeout          "timeout"             408/504, or a client-side timeout
     ├── ServerError              "server_error"        5xx; carries status
     ├── MalformedResponse        "malformed_response"  2xx body that is not the documented JSON
     ├── ContextTooLong           "context_too_long"    the prompt does not fit this deployment
     ├── ContentFiltered          "content_filtered"    the vendor's safety filter refused or cut it
     ├── AuthError                "auth_error"          401/403, or the key variable is unset
     ├── BadRequest               "bad_request"         any other 4xx: the request itself is wrong
     ├── ConnectFailed            "connect_failed"      refused, reset, DNS, protocol breakage
     ├── InternalError            "internal"            a bug or an unexpected exception, wrapped
     └── Refused                  (no call was made: a local guard said no)
          ├── CircuitOpen         "circuit_open"        the deployment's shared breaker is open
          ├── LocalRateLimited    "rate_limited_local"  the shared rpm/tpm budget has no room soon
          └── DeploymentDisabled  "deployment_disabled" disabled after an auth error, until reset

`error_type` is a stable snake_case name: it lands in `Attempt.error_type` and in metric labels, so
renaming one is a breaking change. Messages are safe to store and show: `redact` strips anything
that looks like a credential, and adapters also pass the actual key they used.

Adapters are looked up by `Deployment.provider` in `ADAPTERS`; a new vendor is one module plus one
entry there.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any, Literal, Protocol, cast

import httpx
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from parjanya.config import Deployment
from parjanya.providers.transport import JsonPoster
from parjanya.safeurl import mask_urls_in
from parjanya.schema import ChatMessage, ToolCall

__all__ = [
    "ADAPTERS",
    "AuthError",
    "BadRequest",
    "ChatRequest",
    "ChatResponse",
    "CircuitOpen",
    "ConnectFailed",
    "ContentFiltered",
    "ContextTooLong",
    "DeploymentDisabled",
    "InternalError",
    "LocalRateLimited",
    "MalformedResponse",
    "Provider",
    "ProviderError",
    "ProviderFactory",
    "ProviderTimeout",
    "RateLimited",
    "Refused",
    "ServerError",
    "build_provider",
    "redact",
]


class ChatRequest(BaseModel):
    """A vendor-neutral chat call. Adapters translate it; they never add policy to it.

    NaN and infinity are refused, as in `TaskRequest`: a vendor would receive them as null.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int = Field(default=1024, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    response_format: Literal["text", "json"] = "text"
    logprobs: bool = True  # the confidence checker reads them when the vendor has them
    stop: list[str] | None = None
    tools: list[dict[str, JsonValue]] | None = None  # OpenAI format; adapters translate
    tool_choice: JsonValue = None  # OpenAI format: "auto" | "none" | "required" | {...}


class ChatResponse(BaseModel):
    """What came back, already normalised: text plus what cost, confidence and audit need."""

    model_config = ConfigDict(extra="forbid")

    text: str
    finish_reason: str | None = None
    model: str
    tokens_in: int = Field(default=0, ge=0)
    tokens_out: int = Field(default=0, ge=0)
    logprobs: list[float] | None = None  # one per output token, natural log
    response_id: str | None = None
    latency_s: float = Field(default=0.0, ge=0)
    deployment: str
    tool_calls: list[ToolCall] = Field(default_factory=list)
    cached: bool = False  # served by the response cache: no call, no cost


# --- errors ------------------------------------------------------------------------------------

_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"), r"\1***"),
    (re.compile(r"\bsk-[A-Za-z0-9_*\-]{4,}"), "sk-***"),
    (re.compile(r"(?i)(api[-_ ]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;}]+"), r"\1***"),
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\"'\n,;}]+"), r"\1***"),
)


def redact(text: str, *secrets: str | None) -> str:
    """Remove the given secrets and anything shaped like a credential from `text`.

    Vendors echo parts of keys in error bodies ("Incorrect API key provided: sk-...") and transport
    errors can quote URLs (with a password in a `base_url`), so every message goes through here
    before it becomes an exception.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = mask_urls_in(text)
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class ProviderError(Exception):
    """A failed model call, classified. `str()` is the safe message; nothing else is kept."""

    error_type = "provider_error"

    def __init__(self, message: str, *, deployment: str, status: int | None = None) -> None:
        self.message = redact(message)
        self.deployment = deployment
        self.status = status
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, deployment={self.deployment!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors break the default exception pickling (Celery, multiprocessing).
        return (_restore_error, (type(self), dict(self.__dict__)))


def _restore_error(cls: type[ProviderError], state: dict[str, Any]) -> ProviderError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class RateLimited(ProviderError):
    error_type = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        deployment: str,
        status: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, deployment=deployment, status=status)
        self.retry_after = retry_after


class ProviderTimeout(ProviderError):
    error_type = "timeout"


class ServerError(ProviderError):
    error_type = "server_error"


class MalformedResponse(ProviderError):
    error_type = "malformed_response"


class ContextTooLong(ProviderError):
    error_type = "context_too_long"


class ContentFiltered(ProviderError):
    error_type = "content_filtered"


class AuthError(ProviderError):
    error_type = "auth_error"


class BadRequest(ProviderError):
    error_type = "bad_request"


class ConnectFailed(ProviderError):
    error_type = "connect_failed"


class InternalError(ProviderError):
    """Anything that is not in the tree: wrapped so history records it and callers never see it."""

    error_type = "internal"

    @classmethod
    def wrap(cls, exc: BaseException, *, deployment: str) -> InternalError:
        return cls(f"{type(exc).__name__}: {exc}"[:500], deployment=deployment)


# --- adapters ----------------------------------------------------------------------------------


class Refused(ProviderError):
    """A local guard refused before any HTTP call: nothing was spent, try the next deployment."""

    error_type = "refused"


class CircuitOpen(Refused):
    error_type = "circuit_open"


class LocalRateLimited(Refused):
    error_type = "rate_limited_local"

    def __init__(
        self,
        message: str,
        *,
        deployment: str,
        wait_s: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, deployment=deployment, status=status)
        self.wait_s = wait_s


class DeploymentDisabled(Refused):
    error_type = "deployment_disabled"


class Provider(Protocol):
    """One deployment's chat endpoint. Adapters translate and do nothing else."""

    deployment: Deployment

    async def chat(self, request: ChatRequest) -> ChatResponse: ...


ProviderFactory = Callable[[Deployment, Any], Provider]  # (deployment, JsonPoster or httpx client)

#: `Deployment.provider` → "module:attribute" of its adapter class (or factory). Imported on first
#: use: vendor modules import this one, so naming them here as strings avoids an import cycle.
ADAPTERS: dict[str, str] = {
    "openai": "parjanya.providers.openai:OpenAIProvider",
    "anthropic": "parjanya.providers.anthropic:AnthropicProvider",
}


def build_provider(deployment: Deployment, client: JsonPoster | httpx.AsyncClient) -> Provider:
    """The adapter for `deployment`, sending through `client` (whose transport a test may fake)."""
    target = ADAPTERS.get(deployment.provider)
    if target is None:
        raise NotImplementedError(
            f"no adapter for provider {deployment.provider!r} (deployment {deployment.name!r})"
        )
    module, _, attribute = target.partition(":")
    factory = cast(ProviderFactory, getattr(importlib.import_module(module), attribute))
    return factory(deployment, client)
