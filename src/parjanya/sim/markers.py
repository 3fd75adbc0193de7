"""The marker grammar: how a test steers the sim from inside a prompt.

A marker is `[[sim:KEY=VALUE]]` anywhere in any message. Steering through the prompt (instead of
through side channels) means a test can force an outcome for one request while everything between
the test and the sim - queue, store, tier worker, provider adapter - stays the production code.

Keys (the last marker of a key wins):

- `difficulty=<float in [0, 1]>`: replaces the hidden difficulty of the prompt.
- `error=429|500|503|timeout|malformed`: force that fault on every model (see `faults.Fault`).
- `latency=<seconds>`: exact latency of this request, not scaled by `latency_scale`.

A malformed marker (unknown key, bad value, missing `=`) is an error, never silently ignored: a
typo that quietly does nothing would make a test pass for the wrong reason.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from parjanya.sim.faults import Fault

MARKER_OPEN = "[[sim:"
_MARKER = re.compile(r"\[\[sim:(?P<key>[a-z_]+)=(?P<value>[^\]\s]+)\]\]")


class MarkerError(ValueError):
    """A `[[sim:...]]` marker that does not follow the grammar."""


@dataclass(frozen=True)
class Markers:
    difficulty: float | None = None
    error: Fault | None = None
    latency_s: float | None = None


def difficulty_marker(value: float) -> str:
    return f"[[sim:difficulty={value}]]"


def error_marker(fault: Fault | str | int) -> str:
    """`error_marker(429)`, `error_marker("timeout")`, `error_marker(Fault.malformed)`."""
    return f"[[sim:error={Fault(str(fault)).value}]]"


def latency_marker(seconds: float) -> str:
    return f"[[sim:latency={seconds}]]"


def _number(key: str, value: str, lo: float, hi: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise MarkerError(f"sim marker {key}={value!r}: not a number") from None
    if not (math.isfinite(number) and lo <= number <= hi):
        raise MarkerError(f"sim marker {key}={value!r}: must be within [{lo}, {hi}]")
    return number


def parse_markers(text: str) -> Markers:
    """Read every marker of `text`; `MarkerError` on anything that looks like one but isn't."""
    if text.count(MARKER_OPEN) != len(_MARKER.findall(text)):
        raise MarkerError("malformed sim marker; the grammar is [[sim:KEY=VALUE]]")
    difficulty: float | None = None
    error: Fault | None = None
    latency: float | None = None
    for match in _MARKER.finditer(text):
        key, value = match["key"], match["value"]
        if key == "difficulty":
            difficulty = _number(key, value, 0.0, 1.0)
        elif key == "error":
            try:
                error = Fault(value)
            except ValueError:
                allowed = ", ".join(f.value for f in Fault)
                raise MarkerError(f"sim marker error={value!r}: use one of {allowed}") from None
        elif key == "latency":
            latency = _number(key, value, 0.0, 3600.0)
        else:
            raise MarkerError(f"unknown sim marker key {key!r} (difficulty, error, latency)")
    return Markers(difficulty=difficulty, error=error, latency_s=latency)


def strip_markers(text: str) -> str:
    """The prompt as the simulated model "reads" it: markers removed, never shifting difficulty."""
    return _MARKER.sub("", text)
