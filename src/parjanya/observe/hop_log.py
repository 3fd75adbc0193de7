"""The hop log: one structured event per hop, `hop` on the `parjanya.hop` logger.

Fields: task_id, tenant, tier (None for the classifier), stage, name, hop, outcome, model, ms, and
error_type when the hop raised. In JSON (one line per hop) that is what a log pipeline indexes;
in a terminal, `observe/logs.py` renders the same fields as columns.
"""

from __future__ import annotations

from typing import Any

from parjanya.observe.hops import HopEnd, HopStart
from parjanya.observe.logs import get_logger


def hop_fields(end: HopEnd) -> dict[str, Any]:
    start = end.start
    fields: dict[str, Any] = {
        "task_id": start.task_id,
        "tenant": start.tenant,
        "tier": start.tier,
        "stage": start.stage,
        "name": start.name,
        "hop": start.hop,
        "outcome": end.outcome,
        "model": end.model,
        "ms": round(end.ms, 1),
    }
    if end.error_type is not None:
        fields["error_type"] = end.error_type
    return fields


class HopLog:
    """Logs each hop once, when it ends (a hop that never ends is the reaper's to report)."""

    def __init__(self, logger_name: str = "parjanya.hop") -> None:
        self.log = get_logger(logger_name)

    def started(self, hop: HopStart) -> None:
        return None

    def ended(self, hop: HopEnd) -> None:
        if hop.outcome == "error":
            self.log.warning("hop", **hop_fields(hop))
        else:
            self.log.info("hop", **hop_fields(hop))
