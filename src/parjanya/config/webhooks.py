"""The webhooks section of the policy: where a task's `callback_url` may point, and retries."""

from __future__ import annotations

from pydantic import Field, IPvAnyNetwork

from parjanya.config.base import Strict


class WebhookConfig(Strict):
    """Result callbacks (`callback_url` on a task), sent by every worker from the store's outbox."""

    # Non-global addresses (loopback, private, link-local, ...) a callback may reach, as networks
    # ("127.0.0.0/8", "10.1.0.0/16"). Empty: only globally routable addresses are ever contacted.
    allow_networks: list[IPvAnyNetwork] = Field(default_factory=list)
    # One delivery attempt: connect plus answer.
    timeout_s: float = Field(default=10.0, gt=0)
    # Attempts before a delivery is recorded `failed` (a 2xx answer ends it `delivered`).
    max_attempts: int = Field(default=8, ge=1)
    # Backoff before attempt n+1: backoff_s * 2**(n-1), capped, with up to 20% jitter.
    backoff_s: float = Field(default=2.0, gt=0)
    max_backoff_s: float = Field(default=600.0, gt=0)
    # How often an idle sender looks for deliveries that are due.
    poll_interval_s: float = Field(default=0.5, gt=0)
    # A sender that dies holding a delivery: another sender takes it over after this.
    lease_s: float = Field(default=60.0, gt=0)
    # Deliveries one sender runs at the same time.
    concurrency: int = Field(default=8, ge=1, le=256)
