"""The loop that sends owed callbacks; every worker process runs one in a thread of its own.

Each pass takes up to `webhooks.concurrency` due deliveries from the outbox (leased, so senders in
other processes skip them) and sends them concurrently. One delivery: read the finished task,
check where its URL resolves (`addresses`), POST the result signed with its tenant's secret
(`signing`), and record the outcome. A 2xx is delivered. Anything else (an error answer, a
timeout, a refused connection, a name that does not resolve) is retried at exponential backoff
with jitter, up to `webhooks.max_attempts`, then recorded failed. A refused address is recorded at
once and never sent. Redirects are not followed (a redirect could lead anywhere the check did not
look) and proxy settings of the environment are ignored, so the connection goes to the checked
address.

Body: `{"id", "type": "task.<status>", "created_at", "data": <TaskResult>}`; headers
`Parjanya-Signature`, `Parjanya-Event-Id` (the same on every retry), `Parjanya-Event-Type`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from dataclasses import dataclass, field

import httpx

from parjanya import keys
from parjanya.config import WebhookConfig
from parjanya.connect import async_redis_client
from parjanya.store.aio import AsyncTaskStore
from parjanya.store.apikeys import DEFAULT_TENANT, ApiKeyStore
from parjanya.webhooks.addresses import Refused, resolve
from parjanya.webhooks.outbox import Outbox, Record
from parjanya.webhooks.signing import SIGNATURE_HEADER, sign

__all__ = ["WebhookSender", "backoff_s", "deliver_due"]

log = logging.getLogger("parjanya.webhooks")


def backoff_s(config: WebhookConfig, attempts: int) -> float:
    """The wait after the `attempts`-th failed attempt: doubling, capped, up to 20% jitter."""
    base = min(config.max_backoff_s, config.backoff_s * 2.0 ** max(0, attempts - 1))
    return base * (1 + 0.2 * random.random())  # jitter, not a secret


@dataclass
class _Parts:
    config: WebhookConfig
    outbox: Outbox
    tasks: AsyncTaskStore
    secrets: ApiKeyStore
    http: httpx.AsyncClient


async def _deliver(parts: _Parts, task_id: str) -> Record:
    config = parts.config
    url = await parts.tasks.redis.hget(keys.task(task_id), "callback")
    result = await parts.tasks.get(task_id)
    prior = await parts.outbox.record(task_id)
    attempts = (prior.attempts if prior is not None and prior.state == "pending" else 0) + 1
    now = time.time()
    if url is None or result is None or not result.done:
        record = Record(task_id, "", attempts, "expired", error="the task is gone", at=now)
        await parts.outbox.finish(record)
        return record
    callback = url.decode() if isinstance(url, bytes) else str(url)
    try:
        target = await resolve(callback, config.allow_networks)
        body = json.dumps(
            {
                "id": f"{task_id}.{result.replays}",
                "type": f"task.{result.status.value}",
                "created_at": int(now),
                "data": result.model_dump(mode="json"),
            },
            separators=(",", ":"),
        ).encode()
        secret = await parts.secrets.webhook_secret(result.tenant or DEFAULT_TENANT)
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": "Parjanya-Webhooks/1",
            SIGNATURE_HEADER: sign(secret, body),
            "Parjanya-Event-Id": f"{task_id}.{result.replays}",
            "Parjanya-Event-Type": f"task.{result.status.value}",
        }
        extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
        answer = await parts.http.post(
            target.url, content=body, headers=headers, extensions=extensions
        )
    except Refused as exc:
        record = Record(task_id, callback, attempts, "refused", error=str(exc), at=now)
        log.warning("callback of %s refused: %s", task_id, exc)
        await parts.outbox.finish(record)
        return record
    except (httpx.HTTPError, OSError) as exc:
        error, code = f"{type(exc).__name__}: {exc}", None
    else:
        if 200 <= answer.status_code < 300:
            record = Record(task_id, callback, attempts, "delivered", answer.status_code, at=now)
            await parts.outbox.finish(record)
            return record
        error, code = f"answered {answer.status_code}", answer.status_code
    if attempts >= config.max_attempts:
        record = Record(task_id, callback, attempts, "failed", code, error, now)
        log.warning("callback of %s failed after %d attempts: %s", task_id, attempts, error)
        await parts.outbox.finish(record)
        return record
    record = Record(task_id, callback, attempts, "pending", code, error, now)
    await parts.outbox.retry_at(record, now + backoff_s(config, attempts))
    return record


async def deliver_due(parts: _Parts) -> list[Record]:
    """One pass: every due delivery this sender could take, sent concurrently."""
    taken = await parts.outbox.claim(lease_s=parts.config.lease_s, limit=parts.config.concurrency)
    return list(await asyncio.gather(*(_deliver(parts, task_id) for task_id in taken)))


@dataclass
class WebhookSender:
    """`deliver_due` on a loop, in a daemon thread with its own event loop and clients."""

    store_url: str
    config: WebhookConfig
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> WebhookSender:
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._run()), name="parjanya-webhooks", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    async def _run(self) -> None:
        client = async_redis_client(self.store_url)
        http = httpx.AsyncClient(
            timeout=self.config.timeout_s, follow_redirects=False, trust_env=False
        )
        parts = _Parts(
            self.config, Outbox(client), AsyncTaskStore(client), ApiKeyStore(client), http
        )
        try:
            while not self._stop.is_set():
                try:
                    sent = await deliver_due(parts)
                except Exception:
                    log.exception("webhook pass failed; will try again")
                    sent = []
                if not sent:
                    await asyncio.sleep(self.config.poll_interval_s)
        finally:
            await http.aclose()
            await client.aclose()
