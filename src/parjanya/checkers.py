"""Which confidence checker a process uses: `confidence.checker` in config, built once.

`CHECKERS` maps the config's name to a builder; a new checker is one module plus one entry. Every
builder returns the async protocol the tier worker awaits, with pure checkers lifted by
`as_async`. A builder that calls out (the judge) sends through the HTTP client it is given, the
worker's shared pool in production and a mock transport in tests.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from parjanya.confidence import AsyncConfidenceChecker, DefaultConfidence, as_async
from parjanya.config import ParjanyaConfig
from parjanya.judge import JudgeConfidence
from parjanya.providers.base import build_provider
from parjanya.providers.transport import JsonPoster

__all__ = ["CHECKERS", "CheckerBuilder", "build_checker"]

Client = JsonPoster | httpx.AsyncClient
CheckerBuilder = Callable[[ParjanyaConfig, Client], AsyncConfidenceChecker]


def _default(config: ParjanyaConfig, client: Client) -> AsyncConfidenceChecker:
    return as_async(DefaultConfidence())


def _judge(config: ParjanyaConfig, client: Client) -> AsyncConfidenceChecker:
    name = config.confidence.judge_deployment
    if name is None:  # the config validator already refuses this; kept for a hand-built config
        raise ValueError("confidence.checker 'judge' needs confidence.judge_deployment")
    provider = build_provider(config.deployment(name), client)
    return JudgeConfidence(provider, timeout_s=config.confidence.judge_timeout_s)


CHECKERS: dict[str, CheckerBuilder] = {"default": _default, "judge": _judge}


def build_checker(config: ParjanyaConfig, client: Client) -> AsyncConfidenceChecker:
    """The checker `config` names, its calls (if any) sent through `client`."""
    return CHECKERS[config.confidence.checker](config, client)
