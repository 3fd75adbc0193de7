"""The circuit breaker's state machine: pure functions over a frozen record, no I/O, time passed in.

    closed ──(failure_threshold consecutive failures, or failure_rate over window_s)──▶ open
    open ──(reset_after_s elapsed: the first caller to ask claims the probe)──▶ half_open
    half_open ──probe succeeded──▶ closed       half_open ──probe failed──▶ open (timer restarts)

In half-open exactly one call, the probe, goes through. Its claim is a lease (`probe_until`): if
the worker holding it dies, the next caller after the lease takes the probe over, and the dead
probe's late outcome is ignored because the record no longer names its `probe_id`.

Every stored record has a `version` that the store bumps on each write. A caller reads a snapshot,
asks this module what to do, and writes the answer with compare-and-set on that version: when twenty
callers in three processes all decide to claim the probe, one write lands and the others re-read
and see it taken. The counters (consecutive failures, the failure-rate window) are not written that
way. They are commutative, so the store increments them atomically, fenced by the version a call
was admitted under: an outcome that arrives after a transition is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from parjanya.config import BreakerConfig

__all__ = [
    "WINDOW_BUCKETS",
    "Admission",
    "BreakerRecord",
    "Change",
    "Snapshot",
    "State",
    "admit",
    "bucket_of",
    "bucket_width_us",
    "release_probe",
    "settle_probe",
    "trip",
    "trip_reason",
    "window_totals",
]

State = Literal["closed", "open", "half_open"]

#: The failure-rate window is counted in this many buckets (its resolution is window_s / 10).
WINDOW_BUCKETS = 10


@dataclass(frozen=True)
class BreakerRecord:
    """One deployment's breaker as stored. The default is a breaker nobody has touched: closed."""

    state: State = "closed"
    version: int = 0  # bumped by the store on every compare-and-set write
    failures: int = 0  # consecutive failures (closed); kept for display once open
    opened_at: float | None = None  # unix seconds, when it last opened
    probe_id: str = ""  # half_open: who holds the probe ("" = nobody)
    probe_until: float = 0.0  # half_open: when that probe's lease runs out
    window_calls: int = 0  # calls counted in the failure-rate window (read-only, from the store)
    window_failures: int = 0


@dataclass(frozen=True)
class Snapshot:
    """A record and the store's clock when it was read: every decision uses that `now`."""

    record: BreakerRecord
    now: float


@dataclass(frozen=True)
class Change:
    """A state change a write makes; the caller turns it into an event once the write lands."""

    previous: State
    state: State
    reason: str


@dataclass(frozen=True)
class Admission:
    """What to do with one call: let it through, let it through as the probe, or refuse it."""

    verdict: Literal["allow", "probe", "refuse"]
    write: BreakerRecord | None = None  # probe: the record to compare-and-set before calling
    change: Change | None = None
    retry_in_s: float = 0.0  # refuse: when asking again may get another answer


def admit(
    record: BreakerRecord, now: float, config: BreakerConfig, *, probe_id: str, lease_s: float
) -> Admission:
    """Decide one call. Only the probe cases write (the claim); `allow` and `refuse` never do."""
    if record.state == "closed":
        return Admission("allow")
    if record.state == "open":
        due = (record.opened_at or 0.0) + config.reset_after_s
        if now < due:
            return Admission("refuse", retry_in_s=due - now)
        claimed = replace(record, state="half_open", probe_id=probe_id, probe_until=now + lease_s)
        change = Change("open", "half_open", f"{config.reset_after_s:g}s since it opened")
        return Admission("probe", write=claimed, change=change)
    if record.probe_id and now < record.probe_until:
        return Admission("refuse", retry_in_s=record.probe_until - now)
    # The probe is free (released) or its holder let the lease run out: take it over.
    return Admission("probe", write=replace(record, probe_id=probe_id, probe_until=now + lease_s))


def trip_reason(record: BreakerRecord, config: BreakerConfig) -> str | None:
    """Why a closed breaker must open now, or None. A rate equal to `failure_rate` trips it."""
    if record.state != "closed":
        return None
    if record.failures >= config.failure_threshold:
        return f"{record.failures} consecutive failures"
    if config.failure_rate is not None and record.window_calls >= config.min_calls:
        rate = record.window_failures / record.window_calls
        if rate >= config.failure_rate:
            return (
                f"failure rate {rate:.0%} over {record.window_calls} calls "
                f"in {config.window_s:g}s (limit {config.failure_rate:.0%})"
            )
    return None


def trip(record: BreakerRecord, now: float) -> BreakerRecord:
    """The record of a breaker that opens at `now` (the failure count stays, for display)."""
    return replace(record, state="open", opened_at=now, probe_id="", probe_until=0.0)


def settle_probe(
    record: BreakerRecord, now: float, *, probe_id: str, healthy: bool
) -> tuple[BreakerRecord, Change] | None:
    """The probe's verdict: close, or reopen with a new timer. None if the probe is no longer ours."""
    if record.state != "half_open" or record.probe_id != probe_id:
        return None
    if healthy:
        closed = BreakerRecord(version=record.version)
        return closed, Change("half_open", "closed", "probe succeeded")
    return trip(record, now), Change("half_open", "open", "probe failed")


def release_probe(record: BreakerRecord, *, probe_id: str) -> BreakerRecord | None:
    """Give the probe back without a verdict (a 429, a refusal, a cancelled call)."""
    if record.state != "half_open" or record.probe_id != probe_id:
        return None
    return replace(record, probe_id="", probe_until=0.0)


# --- the failure-rate window, shared with the stores (the Redis one repeats bucket_of in Lua) ---


def bucket_width_us(window_s: float) -> float:
    return window_s * 1e6 / WINDOW_BUCKETS


def bucket_of(now: float, window_s: float) -> int:
    """The bucket `now` (unix seconds) falls in: integer microseconds over the bucket width."""
    return math.floor(round(now * 1e6) / bucket_width_us(window_s))


def window_totals(
    buckets: Mapping[int, tuple[int, int]], now: float, window_s: float
) -> tuple[int, int]:
    """(calls, failures) over the buckets still inside the window that ends at `now`."""
    if window_s <= 0:
        return 0, 0
    oldest = bucket_of(now, window_s) - WINDOW_BUCKETS
    inside = [counts for index, counts in buckets.items() if index > oldest]
    return sum(c for c, _ in inside), sum(f for _, f in inside)
