"""Divert a message nobody can read to its stage's dead-letter queue, with the raw bytes kept.

kombu's Redis transport dies on a non-JSON list entry ("Unrecoverable error: JSONDecodeError") and
Celery's consumer silently acks bodies it cannot decode or route. Both paths end here instead, so a
poison message is kept for inspection and never stops a worker or loops.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from parjanya.config import get_settings
from parjanya.queues import INTAKE_QUEUE, stage_of_queue
from parjanya.store import TaskStore

log = logging.getLogger("parjanya.poison")


@lru_cache(maxsize=1)
def _store() -> TaskStore:
    return TaskStore.from_url(get_settings().store_url)


def divert(queue: str | None, reason: str, raw: bytes | str | object) -> None:
    """Record a poison message. Never raises: the worker must keep serving whatever happens."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    stage = stage_of_queue(queue or INTAKE_QUEUE) or "intake"
    try:
        entry = _store().dead_letter_raw(stage, reason, text)
        log.error("poison message on %s dead-lettered as %s: %s", queue, entry.id, reason)
    except Exception:
        log.exception("could not dead-letter a poison message from %s (%s)", queue, reason)
