"""What the store's state machine answers: a claim, a transition, a cancel, as typed values.

The Lua replies (`scripts.py`) are read here, once, into the values workers and the API act on.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Literal

from parjanya.schema import TaskRequest, TaskResult, TaskStatus, utcnow
from parjanya.store.creation import result_of

ClaimVerdict = Literal["claimed", "poison", "terminal", "stale", "busy", "missing"]
#: What a cancel did: ended a queued task, marked a held one for its next hop boundary, found it
#: already terminal, or found no such task.
CancelVerdict = Literal["cancelled", "requested", "terminal", "missing"]


class Committed(enum.IntEnum):
    """What a transition did. Falsy only when refused, so `if store.transition(...)` still reads
    "it landed"; a caller that opened a next hop must also tell `cancelled` from `written`."""

    refused = 0  # fenced off (a stale holder) or terminal already: do nothing more
    written = 1  # the state asked for
    cancelled = 2  # a next hop asked for, but the caller had cancelled the task: it ended here


class Renewal(enum.IntEnum):
    """What renewing a lease found (HEARTBEAT's reply). Falsy only when superseded, the one
    answer that means another worker holds the hop and this holder's commit will be refused."""

    superseded = 0  # another claim holds the hop now
    renewed = 1
    ended = 2  # no longer held: this holder committed or gave it back (or the reaper took it back)


@dataclass(frozen=True)
class Claim:
    """The answer to 'may I run this hop?'. Only `claimed` and `poison` carry a token and data.

    `ended` is set on a `terminal` claim that itself ended the task (`cancelled`, its cancel
    having been requested while a worker held it, or `expired`), with `doc` as it ended: that
    worker counts the end, once; a claim of a task that was already terminal leaves it None.
    """

    verdict: ClaimVerdict
    token: str = ""
    request: TaskRequest | None = None
    doc: TaskResult | None = None
    deliveries: int = 0
    ended: TaskStatus | None = None

    @property
    def granted(self) -> bool:
        return self.verdict in ("claimed", "poison")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def claim_of(reply: list[Any]) -> Claim:
    """CLAIM's reply as a `Claim` (a `terminal` reply with a doc: this claim ended the task)."""
    verdict = _text(reply[0])
    if verdict not in ("claimed", "poison"):
        if verdict == "terminal" and len(reply) > 2:
            ended = result_of(reply[1], reply[2])
            if ended.finished_at is None:
                ended.finished_at = utcnow()
            return Claim(verdict="terminal", doc=ended, ended=ended.status)
        return Claim(verdict=verdict)  # type: ignore[arg-type]
    return Claim(
        verdict=verdict,  # type: ignore[arg-type]
        token=_text(reply[1]),
        request=TaskRequest.model_validate_json(reply[2]),
        doc=TaskResult.model_validate_json(reply[3]),
        deliveries=int(reply[4]),
    )


__all__ = ["CancelVerdict", "Claim", "ClaimVerdict", "Committed", "Renewal", "claim_of"]
