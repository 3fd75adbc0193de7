"""Store calls that many store tests make: claiming a hop as a worker's admission would."""

from __future__ import annotations

from typing import Any

from parjanya.schema import HopMessage, TaskStatus
from parjanya.store import Claim, TaskStore


def claim_hop(
    store: TaskStore,
    task_id: str,
    hop: int = 0,
    stage: str = "intake",
    *,
    holding: TaskStatus = TaskStatus.classifying,
    ttl: float = 30,
    **extra: Any,
) -> Claim:
    """Claim hop `hop` of `task_id` with a 30 s lease and 3 deliveries allowed."""
    return store.claim(
        HopMessage(task_id=task_id, hop=hop, stage=stage),  # type: ignore[arg-type]
        holding=holding,
        lease_ttl_s=ttl,
        max_deliveries=3,
        **extra,
    )
