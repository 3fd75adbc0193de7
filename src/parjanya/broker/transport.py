"""kombu's Redis transport, except that an undecodable list entry is dead-lettered, not fatal.

Only the two places that turn raw list entries into messages are overridden (`_brpop_read` for the
worker's blocking fetch, `_get` for polling). The envelope is checked too: valid JSON that is not a
kombu message would otherwise fail later inside the consumer.
"""

from __future__ import annotations

from queue import Empty
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

from parjanya.broker.poison import divert


def _envelope(raw: bytes | str) -> dict[str, Any] | None:
    try:
        payload = loads(bytes_to_str(raw))
    except (ValueError, UnicodeDecodeError):
        return None
    if (
        isinstance(payload, dict)
        and "body" in payload
        and isinstance(payload.get("properties"), dict)
        and isinstance(payload.get("headers", {}), dict)
    ):
        return payload
    return None


class Channel(kombu_redis.Channel):
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
            payload = _envelope(item)
            if payload is None:
                divert(dest, "undecodable message on the broker (not a kombu JSON envelope)", item)
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
                    payload = _envelope(item)
                    if payload is None:
                        divert(queue, "undecodable message on the broker", item)
                        continue
                    return payload
            self._maybe_update_queues_expire(client, queue)
            raise Empty()


class Transport(kombu_redis.Transport):
    Channel = Channel
