"""Parjanya: complexity-aware routing of AI-agent tasks over Celery tier pools.

Public names only; everything else is internal and may move.
"""

from parjanya.client import Client, Overloaded, TaskHandle, TaskNotFound
from parjanya.schema import TaskRequest, TaskResult, TaskStatus
from parjanya.store import IdempotencyConflict

__all__ = [
    "Client",
    "IdempotencyConflict",
    "Overloaded",
    "TaskHandle",
    "TaskNotFound",
    "TaskRequest",
    "TaskResult",
    "TaskStatus",
]

__version__ = "0.1.0"
