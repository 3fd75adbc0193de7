"""GCRA (the generic cell rate algorithm), pure: rate limits as one timestamp per limit, no I/O.

A limit of `per_minute` units is one unit every `interval_s = 60 / per_minute` seconds. Its whole
state is the theoretical arrival time (TAT): when the budget would be back to full if nothing more
were spent. A demand of `units` at time `t` conforms when `max(TAT, t) + units * interval_s - t` is
within the tolerance (`burst_s`, at least one interval). Spending moves the TAT forward by
`units * interval_s`; a refund moves it back, never below `t` (a budget cannot grow beyond full).

Why GCRA rather than a sliding-window log: one small value per deployment and dimension instead of
one entry per call, O(1) per decision, and the earliest time a demand conforms falls out of the
same arithmetic. That time is what lets a caller *reserve* a slot: `plan` admits a demand up to
`max_wait_s` ahead and moves the TAT at once, so callers that wait are queued by the state itself
and cannot wake up together and overshoot. Tokens reuse the same arithmetic with units = tokens.

What a limit admits: over any stretch of `t` seconds at most `(t + tolerance_s) / interval_s`
units, where `tolerance_s` is `burst_s` but at least one interval; so any minute admits at most
`per_minute` plus the burst. `burst_s=0` spaces requests evenly; the default lets a tenth of the
minute's budget go at once. A demand bigger than the whole tolerance (a long prompt against a
small tpm) conforms only when the budget is full, and then runs the budget into debt for the next
callers, so the rate over time still holds.

The Redis store runs the same arithmetic in Lua (`ratelimit_store`); a shared test suite holds the
two to the same answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DEFAULT_BURST_S",
    "Demand",
    "Dimension",
    "Limit",
    "Plan",
    "adjust",
    "earliest",
    "plan",
    "remaining",
]

Dimension = Literal["rpm", "tpm"]

DEFAULT_BURST_S = 6.0


@dataclass(frozen=True)
class Limit:
    dimension: Dimension
    per_minute: int
    burst_s: float = DEFAULT_BURST_S

    @property
    def interval_s(self) -> float:
        return 60.0 / self.per_minute

    @property
    def tolerance_s(self) -> float:
        """How far ahead of now the TAT may run: the burst, but at least one unit."""
        return max(self.burst_s, self.interval_s)


@dataclass(frozen=True)
class Demand:
    """`units` of one limit: 1 request, or an estimate (or correction) of tokens."""

    limit: Limit
    units: float


@dataclass(frozen=True)
class Plan:
    allowed: bool  # if so, the caller waits `wait_s` and then goes; the slot is already taken
    wait_s: float  # refused: how long until the demand would fit without waiting
    tats: tuple[float, ...]  # the new TATs (unchanged when refused)


def earliest(tat: float | None, demand: Demand, now: float) -> float:
    """When `demand` first conforms to its limit (now at the earliest)."""
    base = now if tat is None else tat
    cost = demand.units * demand.limit.interval_s
    if cost > demand.limit.tolerance_s:
        return max(now, base)  # bigger than the burst: only from a full budget
    return max(now, base + cost - demand.limit.tolerance_s)


def plan(
    tats: Sequence[float | None], demands: Sequence[Demand], now: float, max_wait_s: float
) -> Plan:
    """All demands at one start time, or none: reserve if that start is within `max_wait_s`."""
    start = max([now, *(earliest(t, d, now) for t, d in zip(tats, demands, strict=True))])
    wait = start - now
    current = tuple(now if t is None else t for t in tats)
    if wait > max_wait_s:
        return Plan(allowed=False, wait_s=wait, tats=current)
    spent = tuple(
        max(t, start) + d.units * d.limit.interval_s for t, d in zip(current, demands, strict=True)
    )
    return Plan(allowed=True, wait_s=wait, tats=spent)


def adjust(tat: float | None, demand: Demand, now: float) -> float:
    """Spend more (`units` > 0) or refund (`units` < 0) after the fact.

    A refund of a slot reserved ahead of time gives back its cost but not the idle stretch the
    reservation skipped over; that errs on the side of spending less than the limit."""
    base = now if tat is None else tat
    delta = demand.units * demand.limit.interval_s
    if delta >= 0:
        return max(base, now) + delta
    return max(now, base + delta)


def remaining(tat: float | None, limit: Limit, now: float) -> float:
    """Units that could still start within the next minute: `per_minute` when untouched."""
    backlog = 0.0 if tat is None else max(0.0, tat - now)
    return max(0.0, (60.0 - backlog) / limit.interval_s)
