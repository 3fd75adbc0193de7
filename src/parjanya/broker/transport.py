"""kombu's Redis transport, except that an undecodable list entry is dead-lettered, not fatal.

Only the two places that turn raw list entries into messages are overridden (`_brpop_read` for the
worker's blocking fetch, `_get` for polling). Entries are read with the bounded decoder of
`broker.decode` (size and depth from the transport options `app.py` sets): valid JSON that is not a
kombu message would otherwise fail later inside the consumer, and JSON nested a few thousand deep
raised `RecursionError` out of kombu's `loads` and stopped the worker. On a Parjanya work queue the
whole hop is decoded here, with the same rules as a feeder's, so Celery only ever runs hops that
decode; a message refused here is dead-lettered once, with its reason.
"""

from __future__ import annotations

from queue import Empty
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str

from parjanya.broker.decode import DecodeLimits, Undecodable, envelope_of, hop_of
from parjanya.broker.poison import RawDeadLetters, from_settings
from parjanya.queues import INTAKE_QUEUE, INTAKE_TASK, TIER_TASK, stage_of_queue

#: Transport options (set by `app.py`) that bound one message; absent, `DecodeLimits`' defaults.
MAX_BYTES_OPTION = "parjanya_max_message_bytes"
MAX_DEPTH_OPTION = "parjanya_max_message_depth"


def _work_task(queue: str) -> str | None:
    """The task a Parjanya work queue serves (None for Celery's own queues, e.g. pidbox replies)."""
    if queue == INTAKE_QUEUE:
        return INTAKE_TASK
    stage = stage_of_queue(queue)
    return TIER_TASK if stage is not None and queue.startswith("parjanya.tier.") else None


def checked(
    raw: bytes | str, queue: str, limits: DecodeLimits, dead_letters: RawDeadLetters
) -> dict[str, Any] | None:
    """The envelope to deliver, or None once the entry has been dead-lettered (never raises)."""
    try:
        payload = envelope_of(raw, limits)
        task = _work_task(queue)
        if task is not None:
            hop_of(payload, task, limits)
        return payload
    except Undecodable as exc:
        dead_letters.divert(queue, exc.reason, raw)
    except Exception as exc:  # total: whatever the decoder did, the entry is recorded, not fatal
        dead_letters.divert(queue, f"undecodable message ({type(exc).__name__})", raw)
    return None


class Channel(kombu_redis.Channel):
    @property
    def _limits(self) -> DecodeLimits:
        cached: DecodeLimits | None = self.__dict__.get("_parjanya_limits")
        if cached is None:
            client = self.connection.client
            options = (client.transport_options if client is not None else None) or {}
            default = DecodeLimits()
            cached = DecodeLimits(
                max_bytes=int(options.get(MAX_BYTES_OPTION, default.max_bytes)),
                max_depth=int(options.get(MAX_DEPTH_OPTION, default.max_depth)),
            )
            self.__dict__["_parjanya_limits"] = cached
        return cached

    @property
    def _dead_letters(self) -> RawDeadLetters:
        """This channel's dead-letter sink, built on first use (kombu passes it no context)."""
        sink: RawDeadLetters | None = self.__dict__.get("_parjanya_dead_letters")
        if sink is None:
            sink = self.__dict__["_parjanya_dead_letters"] = from_settings()
        return sink

    def _create_client(self, asynchronous: bool = False) -> Any:
        """Reuse one synchronous client per connection pool.

        kombu builds a new `redis.Redis` for every ack, publish and QoS update; with redis-py 8
        that constructor is a tenth of a hop's CPU (bench/pipeline.py). A redis-py client is a
        thread-safe wrapper around its pool, so one per pool is enough. A new pool (after close
        or fork) gets a new client.
        """
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        pool = self.pool
        cached = self.__dict__.get("_parjanya_sync_client")
        if cached is None or cached[0] is not pool:
            cached = (pool, super()._create_client(asynchronous=False))  # type: ignore[misc]
            self.__dict__["_parjanya_sync_client"] = cached
        return cached[1]

    def _brpop_read(self, **options: Any) -> bool:
        try:
            try:
                dest_item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
            if not dest_item:
                raise Empty()
            dest, item = dest_item
            dest = bytes_to_str(dest).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            payload = checked(item, dest, self._limits, self._dead_letters)
            if payload is None:
                return True
            self.connection._deliver(payload, dest)
            return True
        finally:
            self._in_poll = None
            flush = getattr(self, "_flush_brpop_reauth", None)
            if flush is not None:
                flush()

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        with self.conn_or_acquire() as client:
            for pri in self.priority_steps:
                item = client.rpop(self._q_for_pri(queue, pri))
                if item:
                    self._maybe_update_queues_expire(client, queue)
                    payload = checked(item, queue, self._limits, self._dead_letters)
                    if payload is None:
                        continue
                    return payload
            self._maybe_update_queues_expire(client, queue)
            raise Empty()


class Transport(kombu_redis.Transport):
    Channel = Channel
