"""The one way a hop is admitted: decode -> claim -> judge -> start. Total: nothing escapes it.

Every message that reaches a worker comes through `Admission`, whoever delivered it: a batch
feeder popping raw bytes (`admit_raw`), or Celery's consumer handing a task body its decoded
arguments (`admit_args`). Both decode with the same bounded rules (`broker.decode`), claim in the
store, judge the claim here, and hand each granted hop to `start`, which the pool chose once: run
it in this thread (the classifier, blocking tier dispatch) or launch it on the event loop (async
tier dispatch; `worker/strategy.py`).

Total (docs/RELIABILITY.md modes 8 and 11): a message that does not decode is dead-lettered raw, once,
with its reason; a hop that is terminal, stale or held elsewhere is acknowledged without work; a
hop delivered too often is dead-lettered without running; a store that cannot be reached leaves the
hop to the reaper (the store's outbox deadline or lease brings it back); a claim that itself ends
the task (its cancel requested while a worker held it, its deadline passed) is counted here. Nothing
here raises into a feeder loop or into Celery, so one hostile message can neither stop a pool nor
loop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from parjanya.broker.decode import DecodeLimits, Undecodable, decode_args, decode_raw
from parjanya.schema import ErrorInfo, HopMessage, TaskStatus
from parjanya.store import Claim
from parjanya.worker import observe
from parjanya.worker.deadletter import dead_letter

if TYPE_CHECKING:
    from parjanya.worker.context import WorkerContext

log = logging.getLogger("parjanya.worker")

#: Starts one claimed hop whose claim was judged 'run'.
Start = Callable[["WorkerContext", HopMessage, Claim], None]


def judge(ctx: WorkerContext, queue: str | None, message: HopMessage, claim: Claim) -> str:
    """What a claim means: 'run', or why not (and the dead-lettering that goes with it)."""
    if claim.verdict == "missing":
        ctx.dead_letters.divert(
            queue, f"no task {message.task_id} in the store", message.model_dump_json()
        )
        return "missing"
    if claim.ended is not None and claim.doc is not None:
        # This claim ended the task (cancelled at its hop boundary, or past its deadline): the
        # one place that sees it end, so the one that counts it.
        log.info("hop %s/%s not run: the task ended %s", message.task_id, message.hop, claim.ended)
        observe.ended(claim.doc, message.stage)
        return claim.ended.value
    if not claim.granted:
        log.info("hop %s/%s skipped: %s", message.task_id, message.hop, claim.verdict)
        return claim.verdict
    if claim.verdict == "poison":
        limit = ctx.config.reliability.max_deliveries
        error = ErrorInfo(
            type="poison",
            message=f"delivered {claim.deliveries} times without finishing "
            f"(limit {limit}); the worker may be dying on it",
        )
        give_up(ctx, message, claim, error)
        return "poison"
    return "run"


def runs_alone(ctx: WorkerContext, claim: Claim) -> bool:
    """A hop already in flight in `isolate_after` workers that died may be what kills them."""
    return claim.deliveries > ctx.config.reliability.isolate_after


def give_up(ctx: WorkerContext, message: HopMessage, claim: Claim, error: ErrorInfo) -> None:
    # The handler may have added attempts to the claimed doc before failing: they are history too.
    assert claim.doc is not None
    dead_letter(
        ctx.store,
        claim.doc,
        token=claim.token,
        hop=message.hop,
        stage=message.stage,
        error=error,
        within_s=ctx.config.reliability.lease_ttl_s,
    )


def limits_of(ctx: WorkerContext) -> DecodeLimits:
    reliability = ctx.config.reliability
    return DecodeLimits(reliability.max_message_bytes, reliability.max_message_depth)


class Admission:
    """Admits the hops of one queue for one pool: `holding` is the state a claim moves them to."""

    def __init__(
        self,
        ctx: WorkerContext,
        queue: str,
        *,
        task_name: str,
        holding: TaskStatus,
        start: Start,
    ) -> None:
        self.ctx, self.queue, self.task_name = ctx, queue, task_name
        self.holding, self.start = holding, start
        self.limits = limits_of(ctx)
        self.admitted = 0

    def admit_raw(self, raws: list[bytes]) -> int:
        """Raw list entries a feeder popped: each is started, skipped or dead-lettered, once."""
        messages: list[HopMessage] = []
        for raw in raws:
            message = self._decode(raw, partial(decode_raw, raw, self.task_name, self.limits))
            if message is not None:
                messages.append(message)
        return self.admit_hops(messages)

    def admit_hops(self, messages: list[HopMessage]) -> int:
        """Hops already decoded (an AMQP feeder checks each delivery itself): claimed in one
        round trip, each started, skipped or dead-lettered; how many started."""
        if not messages:
            return 0
        return sum(verdict == "started" for verdict in self._claim_and_start(messages))

    def admit_args(self, args: Any, kwargs: Any) -> str:
        """A task body's arguments (Celery decoded them): the verdict, or 'started'."""
        message = self._decode(
            partial(_arguments_text, args, kwargs), partial(decode_args, args, kwargs)
        )
        return "undecodable" if message is None else self._claim_and_start([message])[0]

    def _decode(
        self, raw: bytes | Callable[[], str], decode: Callable[[], HopMessage]
    ) -> HopMessage | None:
        """The hop, or None once the message is dead-lettered (`raw`: its bytes, or a function
        that renders them, called only for a message that is dead-lettered)."""
        try:
            return decode()
        except Undecodable as exc:
            reason = exc.reason
        except Exception as exc:  # the decoder is total by design; this is the last defence
            log.exception("decoding a message from %s failed unexpectedly", self.queue)
            reason = f"undecodable message ({type(exc).__name__})"
        self.ctx.dead_letters.divert(self.queue, reason, raw() if callable(raw) else raw)
        return None

    def _claim_and_start(self, messages: list[HopMessage]) -> list[str]:
        """One verdict per message: 'started', or why not."""
        limits = self.ctx.config.reliability
        try:
            claims = self.ctx.store.claim_many(
                messages,
                holding=self.holding,
                lease_ttl_s=limits.lease_ttl_s,
                max_deliveries=limits.max_deliveries,
                expired_ttl_s=limits.result_ttl_s,
            )
        except Exception:
            # Each hop is `queued` in the store with a deadline: the reaper republishes it.
            log.exception(
                "claiming %d hops from %s failed; the reaper will retry", len(messages), self.queue
            )
            return ["store unreachable"] * len(messages)
        verdicts = [
            self._judge(message, claim) for message, claim in zip(messages, claims, strict=True)
        ]
        granted = [
            (index, message, claim)
            for index, (message, claim, verdict) in enumerate(
                zip(messages, claims, verdicts, strict=True)
            )
            if verdict == "run"
        ]
        # Hops delivered more often go last: a suspect that must run alone (`worker/dispatch.py`)
        # then waits for its batch-mates to finish instead of holding them claimed while it runs.
        granted.sort(key=lambda entry: entry[2].deliveries)
        # Of several suspects only the first is started; the others go back now, before it
        # starts: given back after, by the dispatcher, their release raced the death the first
        # may cause, and a release it cut off counted as one more delivery of a bystander (a
        # neighbour of a poison hop dead-lettered as poison itself on a slow machine).
        later = [entry for entry in granted if runs_alone(self.ctx, entry[2])][1:]
        for index, message, claim in later:
            hand_back(self.ctx, message, claim, reason="another suspect of its batch runs alone")
            verdicts[index] = "given back"
        given_back = {index for index, _, _ in later}
        granted = [entry for entry in granted if entry[0] not in given_back]
        for index, message, claim in granted:
            try:
                self.start(self.ctx, message, claim)
            except Exception:
                log.exception("starting hop %s/%s failed", message.task_id, message.hop)
                hand_back(self.ctx, message, claim, reason="could not start")
                verdicts[index] = "could not start"
                continue
            verdicts[index] = "started"
            self.admitted += 1
        return verdicts

    def _judge(self, message: HopMessage, claim: Claim) -> str:
        try:
            return judge(self.ctx, self.queue, message, claim)
        except Exception:
            log.exception(
                "judging hop %s/%s failed; its lease will lapse", message.task_id, message.hop
            )
            return "store unreachable"


def _arguments_text(args: Any, kwargs: Any) -> str:
    """A task's decoded arguments as text for its dead letter, whatever they hold."""
    try:
        return json.dumps({"args": args, "kwargs": kwargs}, default=repr)[: 1 << 16]
    except Exception:  # nested past the recursion limit, or a repr that raises
        return f"<task arguments that cannot be shown: {type(args).__name__}>"


def hand_back(ctx: WorkerContext, message: HopMessage, claim: Claim, *, reason: str) -> None:
    """Give a claimed hop that never started back to the store now, rather than after its lease."""
    try:
        ctx.store.release(message.task_id, claim.token)
    except Exception:
        log.warning("could not give hop %s back; its lease will lapse", message.task_id)
    else:
        log.info("hop %s/%s given back: %s", message.task_id, message.hop, reason)
