"""Task state, results and dead letters in Redis: the truth that the broker only hints at."""

from parjanya.store.creation import Created, IdempotencyConflict
from parjanya.store.deadletters import DeadLetterStore
from parjanya.store.tasks import TaskStore
from parjanya.store.verdicts import Claim, Committed, Renewal

__all__ = [
    "Claim",
    "Committed",
    "Created",
    "DeadLetterStore",
    "IdempotencyConflict",
    "Renewal",
    "TaskStore",
]
