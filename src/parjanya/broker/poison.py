"""Divert a message nobody can read to its stage's dead-letter queue, with its raw bytes kept.

kombu's Redis transport dies on a non-JSON list entry ("Unrecoverable error: JSONDecodeError"),
Celery's consumer silently acks bodies it cannot decode or route, and a feeder pops raw bytes. All
of them end here instead, so a poison message is kept for inspection (its first bytes, text when
they are UTF-8, else base64) and never stops a worker or loops.

A worker's admission writes through its context's sink (`WorkerContext.dead_letters`); kombu's
channel and Celery's consumer, which have no context, each build one from the settings on first
use (`from_settings`). No sink is kept at module level.
"""

from __future__ import annotations

import logging

from parjanya import metrics
from parjanya.broker.decode import raw_text
from parjanya.config import get_config, get_settings
from parjanya.queues import INTAKE_QUEUE, dead_letter_queue_for, stage_of_queue
from parjanya.store import TaskStore

log = logging.getLogger("parjanya.poison")


class RawDeadLetters:
    """Writes one dead letter per unreadable message; never raises."""

    def __init__(self, store: TaskStore, raw_limit: int = 4096) -> None:
        self.store, self.raw_limit = store, raw_limit

    def divert(self, queue: str | None, reason: str, raw: bytes | str | object) -> None:
        stage = stage_of_queue(queue or INTAKE_QUEUE) or "intake"
        try:
            entry = self.store.dead_letter_raw(stage, reason[:1000], raw_text(raw, self.raw_limit))
            log.error("poison message on %s dead-lettered as %s: %s", queue, entry.id, reason)
            metrics.DEAD_LETTERS.labels(dead_letter_queue_for(stage)).inc()
        except Exception:
            log.exception("could not dead-letter a poison message from %s (%s)", queue, reason)


def from_settings() -> RawDeadLetters:
    """A sink on the configured store, for kombu's channel and Celery's consumer, whose hooks get
    no worker context: each builds its own on first use (it connects only when it writes)."""
    limit = get_config().reliability.dead_letter_raw_bytes
    return RawDeadLetters(TaskStore.from_url(get_settings().store_url), limit)
