"""The Prometheus section of the policy: where each process serves `/metrics`, and label bounds."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from parjanya.config.base import Strict

#: The processes that serve metrics: the classifier pool, a tier pool, or the HTTP API.
MetricsPool = Literal["intake", "low", "mid", "high", "api"]

#: How far above `port_base` each pool serves by default: one port per pool on one host.
POOL_OFFSETS: dict[MetricsPool, int] = {"intake": 0, "low": 1, "mid": 2, "high": 3, "api": 4}


class MetricsConfig(Strict):
    """`/metrics` of every worker pool and of the API (`metrics.py` names the series)."""

    enabled: bool = True
    # Interface the exposition servers bind; 0.0.0.0 where a scraper on another host reads them.
    host: str = "127.0.0.1"
    # The classifier pool serves on port_base, low +1, mid +2, high +3, the API +4.
    port_base: int = Field(default=9808, ge=1, le=65_530)
    # Per-pool overrides of the above, e.g. {low: 9900}; `parjanya worker --metrics-port` beats both.
    ports: dict[MetricsPool, int] = Field(default_factory=dict)
    # Queue depths, oldest-message ages and breaker states are read from Redis on a scrape, at most
    # once per this many seconds per process; scrapes in between get the cached reading.
    sample_every_s: float = Field(default=5.0, ge=0)
    # The tenant label: these tenants always get their own value, and up to `max_tenants` others
    # (first seen, per process); every other tenant is counted as "_other", so a flood of tenant
    # names cannot grow the series without bound. 0 puts every unlisted tenant in "_other".
    tenants: list[str] = Field(default_factory=list)
    max_tenants: int = Field(default=20, ge=0, le=1000)

    def port_for(self, pool: MetricsPool) -> int:
        """The port of a pool (`intake`, a tier, or `api`) unless the command line gives one."""
        return self.ports.get(pool, self.port_base + POOL_OFFSETS[pool])
