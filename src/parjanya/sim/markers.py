"""The marker grammar: how a test steers the sim from inside a prompt.

A marker is `[[sim:KEY=VALUE]]` anywhere in any message. Steering through the prompt (instead of
through side channels) means a test can force an outcome for one request while everything between
the test and the sim - queue, store, tier worker, provider adapter - stays the production code.

Keys (the last marker of a key wins):

- `difficulty=<float in [0, 1]>`: replaces the hidden difficulty of the prompt.
- `error=429|500|503|timeout|malformed|context|filtered`: force that outcome on every model (see
  `faults.Fault`); `context` is a prompt-too-long 400 and `filtered` a safety-filter stop, each in
  the shape of the API called.
- `latency=<seconds>`: exact latency of this request, not scaled by `latency_scale`.
- `tool=<name>`: when the request offers tools, a capable model calls the tool `name` (which must
  be one of them) instead of answering, until the conversation carries a tool result back.

A malformed marker (unknown key, bad value, missing `=`) is an error, never silently ignored: a
typo that quietly does nothing would make a test pass for the wrong reason.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from parjanya.sim.faults import Fault

MARKER_OPEN = "[[sim:"
_MARKER = re.compile(r"\[\[sim:(?P<key>[a-z_]+)=(?P<value>[^\]\s]+)\]\]")
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what both APIs allow as a tool name


class MarkerError(ValueError):
    """A `[[sim:...]]` marker that does not follow the grammar."""


@dataclass(frozen=True)
class Markers:
    difficulty: float | None = None
    error: Fault | None = None
    latency_s: float | None = None
    tool: str | None = None


def difficulty_marker(value: float) -> str:
    return f"[[sim:difficulty={value}]]"


def error_marker(fault: Fault | str | int) -> str:
    """`error_marker(429)`, `error_marker("timeout")`, `error_marker(Fault.malformed)`."""
    return f"[[sim:error={Fault(str(fault)).value}]]"


def latency_marker(seconds: float) -> str:
    return f"[[sim:latency={seconds}]]"


def tool_marker(name: str) -> str:
    return f"[[sim:tool={name}]]"


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
    markers = Markers()
    for match in _MARKER.finditer(text):
        key, value = match["key"], match["value"]
        if key == "difficulty":
            markers = replace(markers, difficulty=_number(key, value, 0.0, 1.0))
        elif key == "error":
            markers = replace(markers, error=_fault(key, value))
        elif key == "latency":
            markers = replace(markers, latency_s=_number(key, value, 0.0, 3600.0))
        elif key == "tool":
            markers = replace(markers, tool=_tool(key, value))
        else:
            raise MarkerError(f"unknown sim marker key {key!r} (difficulty, error, latency, tool)")
    return markers


def _fault(key: str, value: str) -> Fault:
    try:
        return Fault(value)
    except ValueError:
        allowed = ", ".join(f.value for f in Fault)
        raise MarkerError(f"sim marker {key}={value!r}: use one of {allowed}") from None


def _tool(key: str, value: str) -> str:
    if not _TOOL_NAME.fullmatch(value):
        raise MarkerError(f"sim marker {key}={value!r}: a tool name is 1-64 of [A-Za-z0-9_-]")
    return value


def strip_markers(text: str) -> str:
    """The prompt as the simulated model "reads" it: markers removed, never shifting difficulty."""
    return _MARKER.sub("", text)
