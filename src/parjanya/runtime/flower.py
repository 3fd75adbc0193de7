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
`celery flower`.
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
from flower.views.broker import BrokerView
from tornado.options import options

from parjanya.queues import ALL_DEAD_LETTER_QUEUES, ALL_WORK_QUEUES

#: Every queue Parjanya owns, as Flower's Broker page should list them.
PARJANYA_QUEUES: tuple[str, ...] = ALL_WORK_QUEUES + ALL_DEAD_LETTER_QUEUES


def queue_names(reported: list[str]) -> list[str]:
    """The queues workers report, and every Parjanya queue whether or not one is consumed."""
    return sorted(set(reported) | set(PARJANYA_QUEUES))


class ParjanyaBrokerView(BrokerView):  # type: ignore[misc]
    def get_active_queue_names(self) -> list[str]:
        return queue_names(list(super().get_active_queue_names()))


class ParjanyaQueueLengths(GetQueueLengths):  # type: ignore[misc]
    def get_active_queue_names(self) -> list[str]:
        return queue_names(list(super().get_active_queue_names()))


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
