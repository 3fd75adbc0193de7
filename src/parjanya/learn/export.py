"""From the outcome stream to records and training rows: what `parjanya outcomes export` writes.

The stream (`store/outcomes.py`) only names tasks; each record is rebuilt here from the task's
result and request as the store holds them. A task whose result has expired (`result_ttl_s`) or
that is not a stored answer is counted and skipped, never guessed at.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, TextIO

from parjanya.config import OutcomesConfig
from parjanya.learn.records import OutcomeRecord, ShadowVerdict, build_record, to_outcome
from parjanya.schema import TaskRequest, TaskResult, TaskStatus
from parjanya.store.outcomes import OutcomeEntry

__all__ = ["DocSource", "ExportCounts", "collect", "write_outcomes", "write_records"]


class DocSource(Protocol):
    """Where results and requests are read from: the `TaskStore`, or a dict in a test."""

    def get(self, task_id: str) -> TaskResult | None: ...

    def get_request(self, task_id: str) -> TaskRequest | None: ...


@dataclass
class ExportCounts:
    records: int = 0  # records built
    written: int = 0  # lines written
    shadow: int = 0  # of them labelled by a shadow run
    missing: int = 0  # named in the stream, but the result is gone or not an answer


def _answer(docs: DocSource, task_id: str) -> TaskResult | None:
    doc = docs.get(task_id)
    return doc if doc is not None and doc.status == TaskStatus.succeeded else None


def _shadow(docs: DocSource, verdict: OutcomeEntry | None) -> ShadowVerdict | None:
    if verdict is None or verdict.shadow_id is None or verdict.quality is None:
        return None
    shadow = _answer(docs, verdict.shadow_id)
    if shadow is None:
        return None
    return ShadowVerdict(
        shadow=shadow,
        quality=verdict.quality,
        rule=verdict.rule or "unknown",
        comparator=verdict.comparator or "unknown",
    )


def collect(
    entries: Iterable[OutcomeEntry],
    docs: DocSource,
    config: OutcomesConfig,
    *,
    shadow_only: bool = False,
    counts: ExportCounts | None = None,
) -> Iterator[OutcomeRecord]:
    """One record per answered task in `entries` (oldest first), with its latest shadow verdict.

    `shadow_only`: only tasks a shadow run labelled.
    """
    counts = counts if counts is not None else ExportCounts()
    order: dict[str, None] = {}
    verdicts: dict[str, OutcomeEntry] = {}
    for entry in entries:
        order.setdefault(entry.task_id)
        if entry.kind == "shadow":
            verdicts[entry.task_id] = entry
    for task_id in order:
        verdict = verdicts.get(task_id)
        if shadow_only and verdict is None:
            continue
        doc, request = _answer(docs, task_id), docs.get_request(task_id)
        if doc is None or request is None:
            counts.missing += 1
            continue
        record = build_record(doc, request, config, shadow=_shadow(docs, verdict))
        if shadow_only and (record.label is None or not record.label.shadow):
            continue
        counts.records += 1
        yield record


def write_outcomes(records: Iterable[OutcomeRecord], out: TextIO, counts: ExportCounts) -> None:
    """The labelled records as outcome-format lines (`learn/outcomes.py`); the rest are skipped."""
    for record in records:
        outcome = to_outcome(record)
        if outcome is None:
            continue
        out.write(outcome.model_dump_json(exclude_none=True) + "\n")
        counts.written += 1
        counts.shadow += outcome.shadow


def write_records(records: Iterable[OutcomeRecord], out: TextIO, counts: ExportCounts) -> None:
    """Every record as a JSON line: the production view (tier path, cost, latency, label)."""
    for record in records:
        out.write(record.model_dump_json(exclude_none=True) + "\n")
        counts.written += 1
        counts.shadow += bool(record.label and record.label.shadow)
