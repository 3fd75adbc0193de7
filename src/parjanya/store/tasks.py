"""Task state and results in Redis: the source of truth for every hop of every task.

The one place that writes task state. Callers get typed results (`Claim`, `Created`) instead of the
raw Lua replies, and every write is a compare-and-set from `scripts.py`. Each script's keys,
arguments and reply are built in `creation.py` (CREATE) and `hops.py` (the hop scripts); this
class runs them. The client may be a Redis Cluster's (`redis.cluster.RedisCluster`): each call
stays in its task's shard (`keys.py`), and what spans shards (the reaper's sweep, the counters)
reads every shard in one pipeline.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any

import redis
from redis.commands.core import Script

from parjanya import keys
from parjanya.broker.envelope import Enqueue
from parjanya.connect import is_cluster, redis_client
from parjanya.queues import Stage, dead_letter_queue_for
from parjanya.schema import DeadLetter, HopMessage, TaskRequest, TaskResult, TaskStatus
from parjanya.store import scripts
from parjanya.store.batch import ScriptCall, run_batch
from parjanya.store.creation import Created, create_call, created_of, new_task_id, result_of
from parjanya.store.hops import (
    cancel_call,
    claim_call,
    expired_of,
    heartbeat_call,
    owed_of,
    reap_call,
    transition_call,
)
from parjanya.store.hops import text as _text
from parjanya.store.shards import per_shard
from parjanya.store.verdicts import (
    CancelVerdict,
    Claim,
    ClaimVerdict,
    Committed,
    Renewal,
    claim_of,
)

# `Claim` and the verdicts live in store/verdicts.py and stay importable from here.
__all__ = ["CancelVerdict", "Claim", "ClaimVerdict", "Committed", "TaskStore"]


class TaskStore:
    def __init__(self, client: redis.Redis, *, idempotency_ttl_s: int = 86_400) -> None:
        self.redis = client
        self.idempotency_ttl_s = idempotency_ttl_s
        # Dead letters are copied onto their stage's list (for queue-length tools) on a plain
        # Redis only: on a cluster the list is in none of the tasks' hash slots.
        self.dead_letter_lists = not is_cluster(client)
        self._create = client.register_script(scripts.CREATE)
        self._uncreate = client.register_script(scripts.UNCREATE)
        self._claim = client.register_script(scripts.CLAIM)
        self._heartbeat = client.register_script(scripts.HEARTBEAT)
        self._release = client.register_script(scripts.RELEASE)
        self._transition = client.register_script(scripts.TRANSITION)
        self._dead_letter_raw = client.register_script(scripts.DEAD_LETTER_RAW)
        self._replay = client.register_script(scripts.REPLAY)
        self._reap = client.register_script(scripts.REAP)
        self._cancel = client.register_script(scripts.CANCEL)

    @classmethod
    def from_url(cls, url: str, *, socket_timeout: float = 30, **kwargs: Any) -> TaskStore:
        client = redis_client(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=min(5, socket_timeout),
            health_check_interval=30,
        )
        return cls(client, **kwargs)

    # -- producers ---------------------------------------------------------------------------

    def create(
        self,
        request: TaskRequest,
        *,
        requeue_after_s: float,
        enqueue: Callable[[HopMessage], Enqueue | None] = lambda _: None,
        shadow_of: str | None = None,
    ) -> Created:
        """Record a new task; `enqueue` may give its intake message to push in the same step.

        `shadow_of` marks the task as a shadow run of that task (`TaskResult.shadow_of`).
        """
        call_keys, call_args, enqueued = create_call(
            request,
            requeue_after_s=requeue_after_s,
            idempotency_ttl_s=self.idempotency_ttl_s,
            enqueue=enqueue,
            shadow_of=shadow_of,
        )
        reply = self._create(keys=call_keys, args=call_args)
        return created_of(reply, request, call_args, enqueued)

    def uncreate(self, task_id: str, request: TaskRequest) -> bool:
        idem = request.idempotency_key
        call_keys = [
            keys.task(task_id),
            keys.inflight(keys.shard_of(task_id)),
            keys.idempotency(idem) if idem else keys.unused(task_id),
        ]
        return bool(self._uncreate(keys=call_keys, args=[task_id, "1" if idem else ""]))

    # -- readers -----------------------------------------------------------------------------

    def get(self, task_id: str) -> TaskResult | None:
        state, doc = self.redis.hmget(keys.task(task_id), ["state", "doc"])
        if state is None or doc is None:
            return None
        return result_of(state, doc)

    def get_request(self, task_id: str) -> TaskRequest | None:
        raw = self.redis.hget(keys.task(task_id), "request")
        return None if raw is None else TaskRequest.model_validate_json(raw)

    def hop_of(self, task_id: str) -> tuple[int, Stage] | None:
        hop, stage = self.redis.hmget(keys.task(task_id), ["hop", "stage"])
        if hop is None or stage is None:
            return None
        return int(hop), _text(stage)  # type: ignore[return-value]

    def wait_done(self, task_id: str, timeout_s: float) -> bool:
        """Block until the task is terminal. BLMOVE onto the same list wakes every waiter."""
        done_key = keys.done(task_id)
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bool(self.redis.exists(done_key))
            # Redis >= 6 takes fractional seconds; the stubs say int.
            wait = max(0.01, min(remaining, 1.0))  # 0 would mean 'block forever'
            if self.redis.blmove(done_key, done_key, wait, "RIGHT", "LEFT"):  # type: ignore[arg-type]
                return True

    def cancel(self, task_id: str, *, ttl_s: int, attempts: int = 5) -> CancelVerdict:
        """End a queued task now, or mark a held one to end at its next hop boundary.

        The cancelled doc is built here from the doc read with the hop and token; the script
        writes it only if both are unchanged, so a worker's concurrent transition is never lost.
        """
        for _ in range(attempts):
            hop, token, doc = self.redis.hmget(keys.task(task_id), ["hop", "token", "doc"])
            if doc is None:
                return "missing"
            call_keys, call_args = cancel_call(task_id, hop, token, doc, ttl_s)
            verdict = _text(self._cancel(keys=call_keys, args=call_args)[0])
            if verdict != "moved":
                self.count(f"cancel_{verdict}")
                return verdict  # type: ignore[return-value]
        raise RuntimeError(f"task {task_id} kept moving while being cancelled; try again")

    # -- workers -----------------------------------------------------------------------------

    def claim(
        self,
        message: HopMessage,
        *,
        holding: TaskStatus,
        lease_ttl_s: float,
        max_deliveries: int,
        expired_ttl_s: int = 0,
    ) -> Claim:
        return self.claim_many(
            [message],
            holding=holding,
            lease_ttl_s=lease_ttl_s,
            max_deliveries=max_deliveries,
            expired_ttl_s=expired_ttl_s,
        )[0]

    def claim_many(
        self,
        messages: list[HopMessage],
        *,
        holding: TaskStatus,
        lease_ttl_s: float,
        max_deliveries: int,
        expired_ttl_s: int = 0,
    ) -> list[Claim]:
        """`claim` for a batch, in one round trip (the tier feeder admits hops in batches).

        A task past its deadline ends `expired` in the claim (kept `expired_ttl_s`, 0: forever).
        """
        now = time.time()
        calls = [
            claim_call(
                message,
                now=now,
                holding=holding,
                lease_ttl_s=lease_ttl_s,
                max_deliveries=max_deliveries,
                expired_ttl_s=expired_ttl_s,
            )
            for message in messages
        ]
        return [self._claim_of(reply) for reply in run_batch(self.redis, self._claim, calls)]

    def _claim_of(self, reply: list[Any]) -> Claim:
        claim = claim_of(reply)
        if claim.verdict in ("terminal", "stale", "busy"):
            self.count(f"dedup_{claim.verdict}")
        return claim

    def heartbeat(self, task_id: str, token: str, lease_ttl_s: float) -> bool:
        """Renew one lease: True only when it was renewed."""
        return self.heartbeat_many([(task_id, token)], lease_ttl_s)[0] == Renewal.renewed

    def release(self, task_id: str, token: str) -> bool:
        """Hand back a hop claimed but not started: the reaper's next sweep republishes it, and
        the claim does not count toward its delivery cap (it never ran, so it killed nobody)."""
        call_keys = [keys.task(task_id), keys.inflight(keys.shard_of(task_id))]
        return bool(self._release(keys=call_keys, args=[task_id, token]))

    def heartbeat_many(self, held: list[tuple[str, str]], lease_ttl_s: float) -> list[Renewal]:
        """Renew many leases in one round trip: a process may hold a thousand hops."""
        until = time.time() + lease_ttl_s
        calls = [heartbeat_call(task_id, token, until) for task_id, token in held]
        return [Renewal(int(reply)) for reply in run_batch(self.redis, self._heartbeat, calls)]

    def transition(
        self,
        doc: TaskResult,
        *,
        token: str,
        hop: int,
        stage: Stage,
        deadline_s: float = 0.0,
        ttl_s: int = 0,
        dead_letter: DeadLetter | None = None,
        enqueue: Enqueue | None = None,
    ) -> Committed:
        """Write the next state if `token` is still current. Refused: fenced off, do nothing more.

        `enqueue`, for a non-terminal next state, is the next hop's queue message, pushed in the
        same atomic step. A non-terminal next state of a task whose cancel was requested is not
        written: the task ends `cancelled` (`Committed.cancelled`) and nothing is pushed.
        """
        call_keys, call_args = self.transition_call(
            doc,
            token=token,
            hop=hop,
            stage=stage,
            deadline_s=deadline_s,
            ttl_s=ttl_s,
            dead_letter=dead_letter,
            enqueue=enqueue,
        )
        return Committed(int(self._transition(keys=call_keys, args=call_args)))

    @property
    def transition_script(self) -> Script:
        return self._transition

    def transition_call(
        self,
        doc: TaskResult,
        *,
        token: str,
        hop: int,
        stage: Stage,
        deadline_s: float = 0.0,
        ttl_s: int = 0,
        dead_letter: DeadLetter | None = None,
        enqueue: Enqueue | None = None,
    ) -> ScriptCall:
        """The keys and arguments of `transition`, for a caller that batches its round trips."""
        return transition_call(
            doc,
            now=time.time(),
            token=token,
            hop=hop,
            stage=stage,
            deadline_s=deadline_s,
            ttl_s=ttl_s,
            dead_letter=dead_letter,
            enqueue=enqueue,
            dead_letter_list=self.dead_letter_lists,
        )

    def reap_due(
        self,
        *,
        requeue_after_s: float,
        limit: int = 200,
        expired_ttl_s: int = 0,
        on_expired: Callable[[TaskResult, Stage], None] | None = None,
    ) -> list[HopMessage]:
        """Hops owed a (re)publish: lease expired (holder died) or queued for too long, each
        in its task's SLA class. A task past its deadline ends `expired` instead, and is handed
        to `on_expired` (with the stage it waited on) so the reaping process counts it once.

        Every shard's in-flight set is read in one pipeline; the `limit` longest overdue are
        reaped."""
        now = time.time()
        swept = per_shard(
            self.redis,
            lambda pipe, shard: pipe.zrangebyscore(
                keys.inflight(shard), "-inf", now, start=0, num=limit, withscores=True
            ),
        )
        due = heapq.nsmallest(limit, itertools.chain.from_iterable(swept), key=lambda p: p[1])
        owed: list[HopMessage] = []
        for raw_id, _ in due:
            task_id = _text(raw_id)
            call_keys, call_args = reap_call(
                task_id, now=now, requeue_after_s=requeue_after_s, expired_ttl_s=expired_ttl_s
            )
            reply = self._reap(keys=call_keys, args=call_args)
            message = owed_of(task_id, reply)
            if message is not None:
                owed.append(message)
            elif on_expired is not None and (ended := expired_of(reply)) is not None:
                on_expired(*ended)
        return owed

    # -- dead letters (the store half; `store.deadletters` adds listing and replay) -------------

    def dead_letter_raw(self, stage: Stage, reason: str, raw: str) -> DeadLetter:
        entry = DeadLetter(
            id=f"raw-{new_task_id()}",
            queue=dead_letter_queue_for(stage),
            reason=reason,
            raw=raw[: 1 << 21],  # callers bound it (broker/poison.py); this is a backstop
        )
        self._dead_letter_raw(
            keys=[
                entry.queue if self.dead_letter_lists else keys.unused(entry.id),
                keys.dead_letter_index(keys.shard_of(entry.id)),
                keys.dead_letter(entry.id),
            ],
            args=[
                entry.model_dump_json(),
                time.time(),
                entry.id,
                "1" if self.dead_letter_lists else "",
            ],
        )
        self.count("dead_letters_raw")
        return entry

    def replay(
        self,
        task_id: str,
        doc: TaskResult,
        *,
        expected_hop: int,
        max_replays: int,
        requeue_after_s: float,
    ) -> int:
        """CAS dead -> queued on hop+1. Returns the new hop, -1 if not dead (or raced), -2 capped."""
        shard = keys.shard_of(task_id)
        return int(
            self._replay(
                keys=[
                    keys.task(task_id),
                    keys.inflight(shard),
                    keys.done(task_id),
                    keys.dead_letter_index(shard),
                    keys.dead_letter(task_id),
                ],
                args=[
                    task_id,
                    expected_hop,
                    doc.model_dump_json(),
                    time.time() + requeue_after_s,
                    max_replays,
                ],
            )
        )

    # -- counters ----------------------------------------------------------------------------

    def count(self, name: str, amount: int = 1) -> None:
        self.redis.hincrby(keys.COUNTERS, name, amount)

    def counters(self) -> dict[str, int]:
        """Every counter: those counted here (`keys.COUNTERS`) plus each shard's, in one pipeline."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.COUNTERS)
            for shard in keys.all_shards():
                pipe.hgetall(keys.counters(shard))
            hashes = pipe.execute()
        totals: dict[str, int] = {}
        for counts in hashes:
            for name, value in counts.items():
                totals[_text(name)] = totals.get(_text(name), 0) + int(value)
        return totals

    def in_flight(self) -> int:
        """How many tasks are not terminal yet, over every shard (ops, tests, the benches)."""
        counts = per_shard(self.redis, lambda pipe, shard: pipe.zcard(keys.inflight(shard)))
        return sum(int(n) for n in counts)
