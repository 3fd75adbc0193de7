"""The Celery app: queues, routes and the reliability settings every pool shares.

`celery -A parjanya.app worker -Q parjanya.tier.low` and `parjanya worker --tier low` start the same
thing. The settings follow the baseline of docs/RELIABILITY.md: late acks, reject on a lost worker,
prefetch 1, one visibility timeout for every pool (checked at start-up), fast restore of orphaned
messages, soft shutdown, and acks on failure because every task body is total and dead-letters what
it cannot do.
Celery's own result backend is off: task results live in Parjanya's store.
"""

from __future__ import annotations

from urllib.parse import urlparse

from celery import Celery
from kombu import Exchange, Queue

from parjanya.broker import amqp
from parjanya.broker.amqp import AMQP_SCHEMES
from parjanya.broker.connection import TRANSPORT_PATH
from parjanya.config import ParjanyaConfig, Settings, get_config, get_settings
from parjanya.queues import ALL_WORK_QUEUES, INTAKE_QUEUE, INTAKE_TASK
from parjanya.worker.process import WorkerProcess

#: The anonymous exchange routes straight to the list named by the routing key, so delivery never
#: depends on binding records in Redis (which a flush or a restart without persistence would lose).
DIRECT = Exchange("", type="direct")


def build_queues() -> list[Queue]:
    return [Queue(name, DIRECT, routing_key=name, no_declare=False) for name in ALL_WORK_QUEUES]


def _transport_options(config: ParjanyaConfig) -> dict[str, object]:
    visibility = config.reliability.visibility_timeout_s
    return {
        "visibility_timeout": visibility,
        "unacked_restore_interval": max(1, int(visibility / 10)),
        "unacked_restore_throttle": 1,
        "socket_timeout": 30,
        "socket_connect_timeout": 5,
        "health_check_interval": 25,
        # Read by Parjanya's transport (broker/transport.py): bounds on one queue message.
        "parjanya_max_message_bytes": config.reliability.max_message_bytes,
        "parjanya_max_message_depth": config.reliability.max_message_depth,
    }


def _broker_conf(scheme: str, config: ParjanyaConfig) -> dict[str, object]:
    """What differs between the brokers: Parjanya's Redis transport, or RabbitMQ's queues."""
    if scheme in AMQP_SCHEMES:
        limits = config.reliability
        return {
            "broker_transport": None,
            "broker_transport_options": amqp.transport_options(
                config.amqp, limits.max_message_bytes, limits.max_message_depth
            ),
            "task_queues": amqp.work_queues(config.amqp),
            "worker_detect_quorum_queues": True,
        }
    return {
        "broker_transport": TRANSPORT_PATH if scheme in ("redis", "rediss") else None,
        "broker_transport_options": _transport_options(config),
        "task_queues": build_queues(),
    }


class ParjanyaCelery(Celery):
    """Celery's app, carrying what one worker process keeps between Celery's calls
    (`worker/process.py`): the one global Celery requires is then the only one there is."""

    worker_process: WorkerProcess


def create_app(
    settings: Settings | None = None, config: ParjanyaConfig | None = None
) -> ParjanyaCelery:
    settings = settings or get_settings()
    config = config or get_config()
    limits = config.reliability
    # `amqp`: connections that report the Redis transport as `redis://` (broker/connection.py).
    app = ParjanyaCelery(
        "parjanya",
        broker=settings.broker_url,
        amqp="parjanya.broker.connection:AMQP",
        set_as_current=False,
    )
    scheme = urlparse(settings.broker_url).scheme
    app.conf.update(
        broker_connection_retry_on_startup=True,
        broker_pool_limit=64,
        result_backend=None,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=INTAKE_QUEUE,
        task_default_exchange="",
        task_create_missing_queues=False,
        task_routes={INTAKE_TASK: {"queue": INTAKE_QUEUE}},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_time_limit=limits.task_time_limit_s,
        task_soft_time_limit=max(1.0, limits.task_time_limit_s - 10),
        task_track_started=False,
        worker_prefetch_multiplier=1,
        worker_consumer="parjanya.broker.consumer:Consumer",
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_soft_shutdown_timeout=30.0,
        worker_enable_soft_shutdown_on_idle=True,
        # Task events cost a publish per state change; workers turn them on with `--events` (-E)
        # where Flower should show tasks. Queue lengths in Flower need no events.
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_hijack_root_logger=False,
        imports=(
            "parjanya.tasks.intake",
            "parjanya.tasks.tier",
            "parjanya.tasks.lifecycle",
            "parjanya.tasks.exposition",
        ),
        **_broker_conf(scheme, config),
    )
    app.worker_process = WorkerProcess(app)
    return app


app = create_app()
