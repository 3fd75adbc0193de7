"""After a task is answered: leave its outcome record, maybe start a shadow run, judge a shadow.

The tier hop calls `Learning.answered` once its answer is committed, so the caller (woken by that
commit) never waits for any of this, and a failure here is logged and dropped: learning is never
a reason to fail or delay a task. The decisions themselves are pure and live in `learn/`; this
module only does the I/O.

- A task answered for a caller gets an `answered` entry in the outcome stream
  (`store/outcomes.py`), batched with others of the same turn of the loop.
- A sampled one (`routing.shadow_rate`, `learn/shadow.py`) is submitted again as a shadow task,
  pinned to the next tier up. It is a task of its own, with its own id, state and fencing token,
  so nothing it does can reach the original's record; it goes through the classifier and its tier
  like any task, and is billed like one (its result carries the tenant and its cost).
- A shadow task, once answered, is compared with the original's stored answer by the configured
  comparator, and the verdict is appended to the stream. A shadow answer its own confidence check
  doubted is no reference, so it gives no verdict.

A shadow is started after the original's commit and is not retried: if this process dies in
between, that task goes unshadowed, which costs one sample and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

import httpx
import redis.asyncio as aioredis

from parjanya.config import ParjanyaConfig
from parjanya.learn.agreement import AnswerText, tool_names
from parjanya.learn.shadow import (
    Comparator,
    make_comparator,
    sampled,
    shadow_request,
    shadow_tier,
)
from parjanya.providers.base import build_provider
from parjanya.providers.transport import JsonPoster
from parjanya.queues import Tier
from parjanya.schema import TaskRequest, TaskResult
from parjanya.store import TaskStore
from parjanya.store.batch import ScriptBatcher
from parjanya.store.outbox import Outbox
from parjanya.store.outcomes import OutcomeEntry, OutcomeLog

log = logging.getLogger("parjanya.learning")


class Learning:
    """One per worker process (`WorkerContext.learning`); used on the process's event loop."""

    def __init__(
        self,
        store: TaskStore,
        outbox: Outbox,
        aredis: aioredis.Redis,
        config: ParjanyaConfig,
        http: JsonPoster | httpx.AsyncClient | None = None,
    ) -> None:
        """`http` carries the judge's calls when `routing.shadow_judge` names one."""
        self.store, self.outbox, self.config = store, outbox, config
        self.log = OutcomeLog(
            store.redis,
            max_records=config.outcomes.max_records,
            retention_s=config.outcomes.retention_s,
        )
        self._append = ScriptBatcher(aredis, self.log.script)
        judge = config.routing.shadow_judge
        if judge is not None and http is None:
            raise ValueError("routing.shadow_judge needs an HTTP client for the judge's calls")
        self.comparator: Comparator = make_comparator(
            None
            if judge is None or http is None
            else build_provider(config.deployment(judge), http)
        )

    async def answered(self, request: TaskRequest, doc: TaskResult) -> None:
        """Everything learning does about one committed answer; never raises. The record and the
        shadow are tried apart, so a failure of one (say, a Redis too old for the stream's
        trimming) costs only that one."""
        if doc.shadow_of is not None:
            await self._guarded("verdict", doc, self._judge(request, doc, doc.shadow_of))
            return
        if self.config.outcomes.enabled:
            entry = OutcomeEntry(kind="answered", task_id=doc.id)
            await self._guarded("record", doc, self._append(*self.log.call(entry)))
        tier = self._shadow_tier(doc)
        if tier is not None:
            shadow = asyncio.to_thread(self._start_shadow, request, doc.id, tier)
            await self._guarded("shadow", doc, shadow)

    @staticmethod
    async def _guarded(what: str, doc: TaskResult, step: Awaitable[object]) -> None:
        try:
            await step
        except Exception:
            log.exception("%s of task %s not filed", what, doc.id)

    def _shadow_tier(self, doc: TaskResult) -> Tier | None:
        rate = self.config.routing.shadow_rate
        if not doc.tier_path or not sampled(doc.id, rate):
            return None
        return shadow_tier(doc.tier_path[-1], doc.routing.max_tier if doc.routing else "high")

    def _start_shadow(self, request: TaskRequest, task_id: str, tier: Tier) -> None:
        shadow = shadow_request(request, tier)
        created = self.store.create(
            shadow,
            requeue_after_s=self.config.reliability.requeue_after_s,
            enqueue=self.outbox.message_for,
            shadow_of=task_id,
        )
        self.outbox.publish_intake(created, shadow.sla.klass)
        self.store.count("shadows_started")

    async def _judge(self, request: TaskRequest, shadow: TaskResult, original_id: str) -> None:
        if shadow.low_confidence:
            return
        original = await asyncio.to_thread(self.store.get, original_id)
        if original is None or (original.output is None and not original.tool_calls):
            log.info("shadow %s: task %s has no stored answer to compare", shadow.id, original_id)
            return
        verdict = await self.comparator.compare(
            request.text(),
            AnswerText(original.output or "", tool_names(original.tool_calls)),
            AnswerText(shadow.output or "", tool_names(shadow.tool_calls)),
        )
        entry = OutcomeEntry(
            kind="shadow",
            task_id=original_id,
            shadow_id=shadow.id,
            quality=verdict.quality,
            rule=verdict.rule,
            comparator=self.comparator.name,
        )
        await self._append(*self.log.call(entry))
