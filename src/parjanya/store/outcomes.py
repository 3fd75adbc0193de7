"""Outcome records in Redis: a capped stream with one entry per answered task and per shadow verdict.

A stream because its entries are ordered by the time Redis appended them (an entry's id is Redis's
millisecond clock), so `parjanya outcomes export --since` is one XRANGE, and because MAXLEN and
MINID trim it by count and by age (`outcomes.max_records`, `outcomes.retention_s`) in the same
script that appends: records stay bounded without a sweeper.

An entry holds only what the task's result does not. An answered entry is just the task id: its
tier path, confidence, cost and latency are read from the task's result when the records are
exported (`learn/export.py`), so there is no second copy to drift from the truth or to outlive a
prompt's retention. A shadow entry adds what only the comparison knows: the shadow task's id, the
lower tier's quality and the rule or comparator that gave it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import redis
from pydantic import BaseModel, ConfigDict, Field
from redis.commands.core import Script

from parjanya import keys
from parjanya.store.batch import ScriptCall

__all__ = ["OutcomeEntry", "OutcomeLog"]

# KEYS: stream
# ARGV: max entries, oldest id to keep (ms), then the entry's field/value pairs
APPEND = """
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 3))
redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[2])
return 1
"""


class OutcomeEntry(BaseModel):
    """One stream entry: a task that was answered, or a shadow run's verdict on one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["answered", "shadow"]
    task_id: str  # the answered task; for a verdict, the task that was shadowed
    at: datetime | None = None  # when Redis appended it (read back from the entry id)
    shadow_id: str | None = None
    quality: float | None = Field(default=None, ge=0, le=1)  # of the lower tier's answer
    rule: str | None = None  # which rule of the comparator decided
    comparator: str | None = None

    def fields(self) -> list[str]:
        pairs = {
            "kind": self.kind,
            "task": self.task_id,
            "shadow": self.shadow_id,
            "quality": None if self.quality is None else repr(self.quality),
            "rule": self.rule,
            "comparator": self.comparator,
        }
        return [
            part for name, value in pairs.items() if value is not None for part in (name, value)
        ]

    @classmethod
    def from_stream(cls, entry_id: str, fields: dict[str, str]) -> OutcomeEntry:
        millis = int(entry_id.split("-", 1)[0])
        quality = fields.get("quality")
        return cls(
            kind=fields["kind"],
            task_id=fields["task"],
            at=datetime.fromtimestamp(millis / 1000, UTC),
            shadow_id=fields.get("shadow"),
            quality=None if quality is None else float(quality),
            rule=fields.get("rule"),
            comparator=fields.get("comparator"),
        )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class OutcomeLog:
    """Appends to and reads the outcome stream; the one place that knows its layout."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        max_records: int,
        retention_s: float,
        key: str = keys.OUTCOMES,
    ) -> None:
        self.redis, self.key = client, key
        self.max_records, self.retention_s = max_records, retention_s
        self._append = client.register_script(APPEND)

    @property
    def script(self) -> Script:
        """The append script, for a caller that batches its round trips (`ScriptBatcher`)."""
        return self._append

    def call(self, entry: OutcomeEntry, *, now: float | None = None) -> ScriptCall:
        """The keys and arguments that append `entry` and trim what is too old or too many."""
        oldest_ms = int(((time.time() if now is None else now) - self.retention_s) * 1000)
        return [self.key], [self.max_records, max(oldest_ms, 0), *entry.fields()]

    def append(self, entry: OutcomeEntry) -> None:
        call_keys, call_args = self.call(entry)
        self._append(keys=call_keys, args=call_args)

    def read(self, since: datetime | None = None, *, page: int = 1000) -> Iterator[OutcomeEntry]:
        """Entries appended at or after `since` (all kept ones when None), oldest first."""
        start = "-" if since is None else str(int(since.timestamp() * 1000))
        while True:
            batch: list[tuple[Any, dict[Any, Any]]] = (
                self.redis.xrange(self.key, min=start, max="+", count=page) or []  # type: ignore[assignment]
            )
            for raw_id, raw_fields in batch:
                fields = {_text(k): _text(v) for k, v in raw_fields.items()}
                yield OutcomeEntry.from_stream(_text(raw_id), fields)
            if len(batch) < page:
                return
            start = "(" + _text(batch[-1][0])

    def __len__(self) -> int:
        return int(self.redis.xlen(self.key))
