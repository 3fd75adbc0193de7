"""Deployments taken out of service after an auth error, shared by every worker until a TTL or a clear.

An auth error (401/403, a missing or revoked key) fails every call the same way, so retrying it only
burns time and floods the vendor's logs. The first worker to see one marks the deployment disabled in
a shared store; every worker then skips it without a call (recorded as "deployment_disabled") until
the mark expires (`ttl_s`, 10 minutes by default: long enough to stop the flood, short enough that
a rotated key is picked up without anyone remembering to) or an operator clears it.

Two stores with one interface: `MemoryDisabledDeployments` for unit tests and single processes,
`RedisDisabledDeployments` (one key per deployment, `keys.disabled_deployment`, with a TTL) for a
cluster. Workers read the Redis store through `RecheckedDisabledDeployments`, a per-process view
refreshed every `auth_disable.recheck_s`. `disable_and_alert` is the one place that disables, logs
the ERROR alert line and counts `parjanya_deployment_disabled_total`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis

from parjanya import keys, metrics
from parjanya.aio import SharedReads

__all__ = [
    "DEFAULT_DISABLE_TTL_S",
    "DisabledDeployments",
    "MemoryDisabledDeployments",
    "RecheckedDisabledDeployments",
    "RedisDisabledDeployments",
    "disable_and_alert",
]

log = logging.getLogger(__name__)

DEFAULT_DISABLE_TTL_S = 600.0


class DisabledDeployments(Protocol):
    """Which deployments are out of service, and why."""

    async def reason(self, deployment: str) -> str | None:
        """Why `deployment` is disabled, or None when it is in service."""
        ...

    async def disable(self, deployment: str, reason: str) -> None:
        """Take `deployment` out of service for the store's TTL (a second call restarts it)."""
        ...

    async def clear(self, deployment: str) -> bool:
        """Put `deployment` back in service now; True if it was disabled."""
        ...


class MemoryDisabledDeployments:
    """In-process store: a dict of reason and expiry, on an injectable monotonic clock."""

    def __init__(
        self,
        ttl_s: float = DEFAULT_DISABLE_TTL_S,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s, self._clock = ttl_s, clock
        self._entries: dict[str, tuple[str, float]] = {}

    async def reason(self, deployment: str) -> str | None:
        entry = self._entries.get(deployment)
        if entry is None:
            return None
        reason, until = entry
        if self._clock() >= until:
            del self._entries[deployment]
            return None
        return reason

    async def disable(self, deployment: str, reason: str) -> None:
        self._entries[deployment] = (reason, self._clock() + self.ttl_s)

    async def clear(self, deployment: str) -> bool:
        return self._entries.pop(deployment, None) is not None


class RedisDisabledDeployments:
    """Shared store: one Redis key per disabled deployment, expiring after `ttl_s`."""

    def __init__(self, client: aioredis.Redis, ttl_s: float = DEFAULT_DISABLE_TTL_S) -> None:
        self.client, self.ttl_s = client, ttl_s

    async def reason(self, deployment: str) -> str | None:
        value: bytes | str | None = await self.client.get(keys.disabled_deployment(deployment))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else value

    async def disable(self, deployment: str, reason: str) -> None:
        ttl_ms = max(1, round(self.ttl_s * 1000))
        await self.client.set(keys.disabled_deployment(deployment), reason, px=ttl_ms)

    async def clear(self, deployment: str) -> bool:
        return bool(await self.client.delete(keys.disabled_deployment(deployment)))


class RecheckedDisabledDeployments:
    """A process's view of a shared store, read again at most every `recheck_s` per deployment.

    Asking Redis before every call costs a round trip per call (about a tenth of a tier hop's CPU,
    bench/pipeline.py) for marks that are set a few times a year. This process's own `disable`
    and `clear` take effect here at once; another process's mark is seen within `recheck_s`, and
    the calls it lets through meanwhile meet the same auth error and disable again (idempotent).
    """

    def __init__(
        self,
        shared: DisabledDeployments,
        recheck_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shared, self.recheck_s, self._clock = shared, recheck_s, clock
        self._seen: dict[str, tuple[str | None, float]] = {}
        self._reads: SharedReads[str, str | None] = SharedReads()
        self._changes: dict[str, int] = {}  # this process's own disables and clears

    async def reason(self, deployment: str) -> str | None:
        now = self._clock()
        seen = self._seen.get(deployment)
        if seen is not None and now < seen[1]:
            return seen[0]
        changes = self._changes.get(deployment, 0)
        return await self._reads.read(deployment, changes, lambda: self._read(deployment, changes))

    async def _read(self, deployment: str, changes: int) -> str | None:
        started = self._clock()
        reason = await self.shared.reason(deployment)
        if self._changes.get(deployment, 0) == changes:  # else our own write is newer
            self._seen[deployment] = (reason, started + self.recheck_s)
        return reason

    def _changed(self, deployment: str) -> None:
        self._changes[deployment] = self._changes.get(deployment, 0) + 1

    async def disable(self, deployment: str, reason: str) -> None:
        await self.shared.disable(deployment, reason)
        self._changed(deployment)
        self._seen[deployment] = (reason, self._clock() + self.recheck_s)

    async def clear(self, deployment: str) -> bool:
        self._changed(deployment)
        self._seen.pop(deployment, None)
        return await self.shared.clear(deployment)


async def disable_and_alert(
    store: DisabledDeployments | None, deployment: str, reason: str
) -> bool:
    """Disable `deployment` (if there is a store), log the alert, count it; True if disabled.

    Never raises: a store that is down is logged and the tier carries on without it.
    """
    disabled = False
    if store is not None:
        try:
            await store.disable(deployment, reason)
            disabled = True
        except Exception:
            log.exception("could not mark deployment %s disabled", deployment)
    if disabled:
        metrics.DEPLOYMENT_DISABLED.labels(deployment=deployment).inc()
    log.error(
        "ALERT deployment %s %s after an auth error: %s",
        deployment,
        "disabled until its TTL or a manual clear" if disabled else "failed (not disabled)",
        reason,
    )
    return disabled
