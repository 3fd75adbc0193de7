"""Which broker and store a worker can serve, checked before it takes any work.

A worker reads hops from the broker and state from the store. They may be one Redis database
(then the store's commit pushes the next hop itself, `broker.envelope`) or apart (another Redis
or database: hops are published through kombu after the commit). What a worker cannot serve is
refused at start with the reason, instead of starting and stalling:

- a store that is not Redis (every state write is a Lua script); Redis behind Sentinel
  (`sentinel://`, `parjanya.connect`) is Redis;
- batch feeders (`reliability.feeder_batch` > 0) on a broker that is neither Redis (they pop
  its lists) nor RabbitMQ (they consume through kombu, `worker/amqp_feeder.py`). Set
  `feeder_batch: 0` to let Celery's consumer serve every queue.
"""

from __future__ import annotations

from urllib.parse import urlparse

from parjanya.broker.amqp import AMQP_SCHEMES
from parjanya.config import ParjanyaConfig, Settings
from parjanya.connect import REDIS_SCHEMES
from parjanya.safeurl import mask_url

STORE_SCHEMES = (*REDIS_SCHEMES, "sentinel")


class Unservable(RuntimeError):
    pass


def check_topology(settings: Settings, config: ParjanyaConfig) -> None:
    store = urlparse(settings.store_url).scheme
    broker = urlparse(settings.broker_url).scheme
    if store not in STORE_SCHEMES:
        raise Unservable(
            f"the store must be Redis, not {store!r} (PARJANYA_RESULT_URL, else PARJANYA_BROKER_URL)"
        )
    if broker not in (*REDIS_SCHEMES, *AMQP_SCHEMES) and config.reliability.feeder_batch > 0:
        raise Unservable(
            f"batch feeders read Redis or RabbitMQ, but the broker is {broker!r}: set "
            "reliability.feeder_batch: 0 to use Celery's consumer only"
        )


def describe(settings: Settings) -> str:
    """One line for the start-up log: one Redis, or the store apart (no passwords)."""
    if urlparse(settings.broker_url).scheme in AMQP_SCHEMES:
        return (
            f"broker RabbitMQ ({mask_url(settings.broker_url)}), store "
            f"{mask_url(settings.store_url)}: hops are published with confirms after each commit"
        )
    if settings.store_url == settings.broker_url:
        return "broker and store: one Redis database (commits enqueue the next hop atomically)"
    return (
        f"store apart from the broker ({mask_url(settings.store_url)}): "
        "hops are published after each commit"
    )
