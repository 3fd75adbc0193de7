"""The one place that names queues and tiers. Nothing else builds a queue name by hand."""

from __future__ import annotations

from typing import Literal, get_args

Tier = Literal["low", "mid", "high"]
Stage = Literal["intake", "low", "mid", "high"]
#: SLA classes, most urgent first (`schema.Sla` holds the same values).
SlaClass = Literal["critical", "standard", "batch"]

#: Tiers from cheapest to most capable; escalation moves one step right.
TIERS: tuple[Tier, ...] = get_args(Tier)
STAGES: tuple[Stage, ...] = get_args(Stage)
SLA_CLASSES: tuple[SlaClass, ...] = get_args(SlaClass)

#: Each class's kombu message priority on Redis (0 is served first). Every queue is one Redis list
#: per class, named as kombu's Redis transport names its priority sub-lists (`queue`, then
#: `queue` + SEP + step for the non-zero steps of its default `priority_steps` [0, 3, 6, 9]), so
#: Celery's own consumer, Flower's queue lengths and kombu's restore of unacked messages all read
#: the classes as priorities; the feeders pop them by weight (`worker/feeder.py`). On RabbitMQ each
#: class is a queue of its own under the same name (`broker/amqp.py`), consumed by the same weights.
CLASS_PRIORITY: dict[SlaClass, int] = {"critical": 0, "standard": 3, "batch": 6}
PRIORITY_STEPS: tuple[int, ...] = (0, 3, 6, 9)
PRIORITY_SEP = "\x06\x16"

INTAKE_QUEUE = "parjanya.intake"

#: Celery task names: one for the classifier hop, one for every tier hop (the queue picks the tier).
INTAKE_TASK = "parjanya.intake"
TIER_TASK = "parjanya.tier"


def queue_for(stage: Stage) -> str:
    """Work queue of a stage: `parjanya.intake` or `parjanya.tier.<tier>`."""
    return INTAKE_QUEUE if stage == "intake" else f"parjanya.tier.{stage}"


def class_list(queue: str, sla: SlaClass) -> str:
    """The Redis list holding `queue`'s hops of one SLA class (critical: the queue's own name)."""
    priority = CLASS_PRIORITY[sla]
    return f"{queue}{PRIORITY_SEP}{priority}" if priority else queue


def class_lists(queue: str) -> tuple[str, ...]:
    """`queue`'s lists, most urgent class first (the order a blocking pop must name them in).

    On RabbitMQ each is a queue of its own, with the same name (`broker/amqp.py`)."""
    return tuple(class_list(queue, sla) for sla in SLA_CLASSES)


def base_queue(name: str) -> str:
    """The queue a class list (or class queue) belongs to: `name` without its class suffix."""
    return name.split(PRIORITY_SEP, 1)[0]


def task_for(stage: Stage) -> str:
    """Celery task that runs a stage's hops: the classifier's, or the one every tier shares."""
    return INTAKE_TASK if stage == "intake" else TIER_TASK


def dead_letter_queue_for(stage: Stage) -> str:
    """Dead-letter queue of a stage: `parjanya.dlq.intake` or `parjanya.dlq.<tier>`."""
    return f"parjanya.dlq.{stage}"


def stage_of_queue(queue: str) -> Stage | None:
    """The stage of a work queue, a class list or queue of one, or a dead-letter queue."""
    queue = base_queue(queue)
    for stage in STAGES:
        if queue in (queue_for(stage), dead_letter_queue_for(stage)):
            return stage
    return None


def next_tier(tier: Tier) -> Tier | None:
    index = TIERS.index(tier)
    return TIERS[index + 1] if index + 1 < len(TIERS) else None


def tier_rank(tier: Tier) -> int:
    return TIERS.index(tier)


ALL_WORK_QUEUES: tuple[str, ...] = tuple(queue_for(s) for s in STAGES)
ALL_DEAD_LETTER_QUEUES: tuple[str, ...] = tuple(dead_letter_queue_for(s) for s in STAGES)


def lists_of(queue: str) -> tuple[str, ...]:
    """Where `queue`'s messages wait: a work queue's class lists (or class queues on RabbitMQ),
    and any other queue (a dead-letter queue) by itself."""
    return class_lists(queue) if queue in ALL_WORK_QUEUES else (queue,)
