"""In-memory doubles for tier-call tests: scripted providers, middlewares, a run helper."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from parjanya.config import Deployment, RetryConfig
from parjanya.governance.budgets import current_purse
from parjanya.providers import ChatRequest, ChatResponse, Provider, ProviderError
from parjanya.resilience.base import Next
from parjanya.resilience.fallback import TierCall, call_tier
from parjanya.schema import ChatMessage

REQUEST = ChatRequest(messages=[ChatMessage(role="user", content="hi")], max_tokens=16)

Step = ChatResponse | BaseException


def dep(name: str, *, window: int = 8_000, host: str | None = None, **extra: Any) -> Deployment:
    """A deployment; `host` shares an endpoint between deployments (default: its own)."""
    return Deployment(
        name=name,
        base_url=f"http://{host or name}.test/v1",
        model=f"{name}-model",
        price_in_per_mtok=1.0,
        price_out_per_mtok=4.0,
        context_window=window,
        **extra,
    )


def answer(deployment: str, text: str = "hello", **extra: Any) -> ChatResponse:
    return ChatResponse(
        text=text,
        model=f"{deployment}-model",
        deployment=deployment,
        tokens_in=100,
        tokens_out=50,
        **extra,
    )


class Scripted:
    """A provider factory: each deployment plays its script in order (the last step repeats);
    a deployment without a script answers. Counts calls and keeps the requests it saw."""

    def __init__(self, script: dict[str, list[Step]] | None = None) -> None:
        self.script = script or {}
        self.calls: Counter[str] = Counter()
        self.requests: defaultdict[str, list[ChatRequest]] = defaultdict(list)

    def __call__(self, deployment: Deployment) -> Provider:
        return _Fake(self, deployment)

    def step(self, deployment: Deployment, request: ChatRequest) -> ChatResponse:
        self.calls[deployment.name] += 1
        self.requests[deployment.name].append(request)
        steps = self.script.get(deployment.name) or [answer(deployment.name)]
        step = steps[min(self.calls[deployment.name], len(steps)) - 1]
        if isinstance(step, BaseException):
            raise step
        return step


class _Fake:
    def __init__(self, owner: Scripted, deployment: Deployment) -> None:
        self.owner, self.deployment = owner, deployment

    async def chat(self, request: ChatRequest) -> ChatResponse:
        return self.owner.step(self.deployment, request)


class Refuse:
    """A middleware that refuses the named deployments with `error`, and counts every pass."""

    def __init__(self, error: ProviderError, names: Sequence[str]) -> None:
        self.error, self.names = error, set(names)
        self.passes: Counter[str] = Counter()

    async def __call__(
        self, deployment: Deployment, request: ChatRequest, call_next: Next
    ) -> ChatResponse:
        self.passes[deployment.name] += 1
        if deployment.name in self.names:
            raise self.error
        return await call_next(deployment, request)


def run(
    deployments: Sequence[Deployment],
    providers: Scripted,
    *,
    retry: RetryConfig | None = None,
    request: ChatRequest = REQUEST,
    **kwargs: Any,
) -> TierCall:

    async def called() -> TierCall:
        call = await call_tier(
            deployments,
            request,
            providers=providers,
            retry=retry or RetryConfig(),
            hop=1,
            tier="mid",
            **kwargs,
        )
        purse = current_purse()
        if purse is not None:  # as the tier hop does before it commits
            await purse.settled()
        return call

    return asyncio.run(called())
