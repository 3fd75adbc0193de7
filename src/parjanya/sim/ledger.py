"""The ledger: every model call the sim received, for tests to count.

Reliability tests prove "exactly one provider call per hop" and "never more than N calls a minute"
by asking the provider, not the code under test. Calls are keyed by the sha256 of the last user
message (`prompt_key`), which a test can compute from its own prompt.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

#: Per-call records kept for window queries; counters stay exact beyond it.
MAX_RECORDS = 200_000


def prompt_key(text: str) -> str:
    """The ledger key of a prompt: sha256 hex of the last user message's text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Call:
    t: float  # seconds since the ledger was (re)started, at arrival
    model: str | None  # None when the request named no known model
    status: int
    fault: str | None  # a `Fault` value, or None for a normal answer or a refused request
    prompt: str | None  # `prompt_key` of the request, None when the body could not be read


def max_in_window(times: list[float], window_s: float) -> int:
    """The most calls that arrived within any `window_s`-long span (two pointers, sorted)."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


class Ledger:
    """Thread-safe: the server's event loop writes while a test thread may read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._t0 = time.monotonic()
            self._calls: deque[Call] = deque(maxlen=MAX_RECORDS)
            self._total = 0
            self._by_model: Counter[str] = Counter()
            self._by_status: Counter[str] = Counter()
            self._by_fault: Counter[str] = Counter()
            self._prompts: dict[str, dict[str, Counter[str]]] = {}

    def now(self) -> float:
        return time.monotonic() - self._t0

    def record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)
            self._total += 1
            self._by_status[str(call.status)] += 1
            if call.model is not None:
                self._by_model[call.model] += 1
            if call.fault is not None:
                self._by_fault[call.fault] += 1
            if call.prompt is not None:
                entry = self._prompts.setdefault(
                    call.prompt, {"by_model": Counter(), "by_status": Counter()}
                )
                entry["by_model"][call.model or "?"] += 1
                entry["by_status"][str(call.status)] += 1

    def calls(self, prompt: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if prompt is None or c.prompt == prompt]

    def count(self, prompt: str) -> int:
        """How many times this prompt key reached the sim."""
        with self._lock:
            entry = self._prompts.get(prompt)
            return 0 if entry is None else sum(entry["by_model"].values())

    def stats(self, window_s: float = 60.0, include_calls: bool = False) -> dict[str, Any]:
        """What `GET /_sim/stats` returns."""
        calls = self.calls()
        models = sorted({c.model for c in calls if c.model is not None})
        with self._lock:
            result: dict[str, Any] = {
                "total": self._total,
                "by_model": dict(self._by_model),
                "by_status": dict(self._by_status),
                "by_fault": dict(self._by_fault),
                "per_prompt": {
                    key: {
                        "total": sum(entry["by_model"].values()),
                        "by_model": dict(entry["by_model"]),
                        "by_status": dict(entry["by_status"]),
                    }
                    for key, entry in self._prompts.items()
                },
            }
        result["max_in_window"] = {
            "window_s": window_s,
            "all": max_in_window([c.t for c in calls], window_s),
            "by_model": {
                m: max_in_window([c.t for c in calls if c.model == m], window_s) for m in models
            },
        }
        if include_calls:
            result["calls"] = [asdict(c) for c in calls]
        return result
