"""`parjanya flower`: Flower for Parjanya, with every Parjanya queue on its Broker page.

Flower lists on its Broker page (and `/api/queues/length`) the queues its workers report
consuming. That misses the dead-letter queues, which no worker consumes but ops watch most. So
this runs Flower itself (Flower's own start-up steps, `flower.command`), with two of its handlers
subclassed to add Parjanya's queues to the names Flower inspects: every work queue
(`parjanya.intake`, `parjanya.tier.<tier>`) and every dead-letter queue (`parjanya.dlq.<stage>`).
Flower's Redis client sums each list's priority sub-lists itself (kombu's defaults, which the
transport keeps). The handlers are added with tornado's `add_handlers`, whose rules take
precedence over the application's first ones; everything else is Flower's.

On RabbitMQ Flower reads queue lengths from the management API: pass `--broker_api` as with
`celery flower`. There a work queue is one queue per SLA class (`broker/amqp.py`), so the
handlers ask the API for every class queue and show their sum under the work queue's name, as
Flower's Redis client sums the class lists (`ClassesFolded`). They also name the default vhost
`/` as the API wants it (`%2F`): Flower 2.2 joins it into `/api/queues/`, which lists the queues
of every vhost, so another vhost's `parjanya.intake` would be shown (and summed) as this one's.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
from typing import Any

from celery import Celery
from flower import command
from flower.api.tasks import GetQueueLengths
from flower.app import Flower, rewrite_handler
from flower.utils.broker import RabbitMQ
from flower.views.broker import BrokerView
from tornado.options import options

from parjanya.queues import ALL_DEAD_LETTER_QUEUES, ALL_WORK_QUEUES, base_queue, class_lists

#: Every queue Parjanya owns, as Flower's Broker page should list them.
PARJANYA_QUEUES: tuple[str, ...] = ALL_WORK_QUEUES + ALL_DEAD_LETTER_QUEUES
#: What the management API counts per queue; a class queue's are added to its work queue's.
COUNTS = ("messages", "messages_ready", "messages_unacknowledged", "consumers")


def queue_names(reported: list[str]) -> list[str]:
    """The queues workers report, and every Parjanya queue whether or not one is consumed."""
    return sorted({base_queue(name) for name in reported} | set(PARJANYA_QUEUES))


def fold_classes(listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The management API's queues, with each work queue's class queues summed into one row."""
    rows: dict[str, dict[str, Any]] = {}
    for queue in listed:
        name = base_queue(queue["name"])
        row = rows.get(name)
        if row is None:
            rows[name] = {**queue, "name": name}
            continue
        for count in COUNTS:
            if isinstance(queue.get(count), int):
                row[count] = int(row.get(count) or 0) + queue[count]
    return sorted(rows.values(), key=lambda row: str(row["name"]))


class ClassesFolded:
    """Flower's RabbitMQ client, asked for every class queue and answering with their sums."""

    def __init__(self, broker: Any) -> None:
        self.broker = broker

    async def queues(self, names: list[str]) -> list[dict[str, Any]]:
        asked = set(names) | {
            name for queue in names if queue in ALL_WORK_QUEUES for name in class_lists(queue)
        }
        return fold_classes(list(await self.broker.queues(sorted(asked))))


class _ParjanyaQueues:
    """What both queue views change: the names they ask for, and the RabbitMQ client."""

    def get_active_queue_names(self) -> list[str]:
        return queue_names(list(super().get_active_queue_names()))  # type: ignore[misc]

    def get_broker(self) -> Any:
        return for_parjanya(super().get_broker())  # type: ignore[misc]


def for_parjanya(broker: Any) -> Any:
    """Flower's broker client as Parjanya's views use it: unchanged on Redis; on RabbitMQ with
    the class queues folded, and the default vhost named as the management API wants it."""
    if not isinstance(broker, RabbitMQ):
        return broker
    if broker.vhost == "/":
        broker.vhost = "%2F"
    return ClassesFolded(broker)


class ParjanyaBrokerView(_ParjanyaQueues, BrokerView):  # type: ignore[misc]
    pass


class ParjanyaQueueLengths(_ParjanyaQueues, GetQueueLengths):  # type: ignore[misc]
    pass


class ParjanyaFlower(Flower):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        handlers: list[Any] = [
            (r"/broker", ParjanyaBrokerView),
            (r"/api/queues/length", ParjanyaQueueLengths),
        ]
        if self.options.url_prefix:
            handlers = [rewrite_handler(h, self.options.url_prefix) for h in handlers]
        self.add_handlers(r".*", handlers)


def run_flower(app: Celery, argv: list[str]) -> None:
    """Flower's `celery flower` command, with `ParjanyaFlower` as the application."""
    command.apply_env_options()
    command.apply_options("parjanya flower", argv)
    command.extract_settings()
    command.setup_logging()
    flower_app = ParjanyaFlower(capp=app, options=options, **command.settings)
    atexit.register(flower_app.stop)
    signal.signal(signal.SIGTERM, command.sigterm_handler)
    port = flower_app.start_http_server()
    command.print_banner(app, "ssl_options" in command.settings, port)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):  # a stop is a clean exit
        flower_app.start()
