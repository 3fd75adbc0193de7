"""The whole shape over real sockets: producer -> classifier -> tier pools -> escalation -> DLQ."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
import redis

from parjanya.client import Client
from parjanya.governance.priority import queue_depth
from parjanya.queues import TIER_TASK, dead_letter_queue_for, queue_for
from parjanya.runtime.workload import demo_workload
from parjanya.schema import TaskRequest, TaskStatus
from parjanya.sim.ledger import prompt_key
from parjanya.store import DeadLetterStore
from parjanya.worker.deadletter import replay

from .conftest import Cluster, SimControl

pytestmark = pytest.mark.integration


def _calls_for(stats: dict[str, object], prompt: str) -> int:
    per_prompt = stats["per_prompt"]
    assert isinstance(per_prompt, dict)
    entry = per_prompt.get(prompt_key(prompt), 0)
    return int(entry["total"] if isinstance(entry, dict) else entry)


def test_a_60_30_10_mix_lands_mostly_on_low_mid_high(client: Client) -> None:
    workload = demo_workload(40)
    handles = [(category, client.submit(request)) for category, request in workload]
    results = [(category, handle.result(timeout=60)) for category, handle in handles]

    assert Counter(c for c, _ in workload) == {"routine": 24, "architectural": 12, "research": 4}
    assert all(r.status == TaskStatus.succeeded for _, r in results), [
        (r.status, r.error) for _, r in results if r.status != TaskStatus.succeeded
    ]
    first_tier = {
        cat: Counter(r.tier_path[0] for c, r in results if c == cat)
        for cat in ("routine", "architectural", "research")
    }
    assert first_tier["routine"]["low"] >= 0.75 * 24, first_tier
    assert first_tier["architectural"]["mid"] >= 0.6 * 12, first_tier
    assert first_tier["research"]["high"] >= 0.75 * 4, first_tier
    for _, result in results:
        assert result.complexity is not None and 1 <= result.complexity.score <= 10
        assert result.output and result.model and result.cost_usd > 0
        assert next(t.stage for t in result.timings) == "intake"
        assert all(t.finished_at is not None for t in result.timings)


def test_a_low_confidence_answer_escalates_exactly_once(
    client: Client, sim_control: SimControl
) -> None:
    fixable = "Fix the typo in the README title. [[sim:difficulty=0.5]]"
    hopeless = "Fix the typo in the README heading. [[sim:difficulty=0.99]]"
    fixed = client.submit(fixable).result(timeout=30)
    flagged = client.submit(hopeless).result(timeout=30)

    assert fixed.status == TaskStatus.succeeded
    assert fixed.tier_path == ["low", "mid"] and fixed.escalations == 1
    assert not fixed.low_confidence and fixed.confidence is not None and fixed.confidence >= 0.7
    assert [a.tier for a in fixed.attempts if a.tier and a.stage != "intake"] == ["low", "mid"]
    assert fixed.previous_answers[0].tier == "low" and fixed.previous_answers[0].confidence < 0.7

    assert flagged.status == TaskStatus.succeeded  # returned, flagged, not dropped
    assert flagged.tier_path == ["low", "mid"] and flagged.escalations == 1
    assert flagged.low_confidence
    stats = sim_control.stats()
    assert _calls_for(stats, fixable) == 2 and _calls_for(stats, hopeless) == 2


def test_a_total_outage_dead_letters_with_history_and_replay_succeeds(
    client: Client, sim_control: SimControl
) -> None:
    dead_letters = DeadLetterStore(client.store.redis)
    sim_control.set_faults({"default": {"outage": True}})
    handles = [client.submit(f"Summarise release note {i} in one line.") for i in range(3)]
    dead = [h.result(timeout=60) for h in handles]
    for result in dead:
        assert result.status == TaskStatus.dead_lettered
        assert result.error is not None
        tiers_tried = [a.tier for a in result.attempts if a.outcome == "error"]
        assert set(tiers_tried) == {"low", "mid", "high"}  # every deployment of every tier
        assert dead_letters.get(result.id) is not None

    sim_control.reset()
    limits = client.config.reliability
    for result in dead:
        outcome = replay(
            client.store,
            client.outbox.publisher,
            result.id,
            max_replays=limits.max_replays,
            requeue_after_s=limits.requeue_after_s,
        )
        assert outcome.replayed, outcome.reason
    for before, handle in zip(dead, handles, strict=True):
        after = handle.result(timeout=60)
        assert after.status == TaskStatus.succeeded and after.output
        assert after.replays == 1
        assert len(after.attempts) > len(before.attempts)  # old history kept
        assert after.attempts[: len(before.attempts) - 1] == before.attempts[:-1]
        assert dead_letters.get(after.id) is None


def test_a_malformed_message_is_dead_lettered_and_the_worker_keeps_serving(
    client: Client, cluster: Cluster
) -> None:
    broker = redis.Redis.from_url(client.settings.broker_url)
    dlq = dead_letter_queue_for("intake")
    before = broker.llen(dlq)
    broker.lpush(queue_for("intake"), b"\x00this is not json{")
    broker.lpush(queue_for("intake"), b'{"json": "but not a kombu envelope"}')
    client.app.send_task(
        TIER_TASK,
        args=[{"bogus": True}],
        queue=queue_for("intake"),
        routing_key=queue_for("intake"),
        exchange="",
    )
    client.app.send_task(
        "no.such.task",
        args=[],
        queue=queue_for("intake"),
        routing_key=queue_for("intake"),
        exchange="",
    )

    after = client.submit("Rename the variable tmp to total in cart.py.").result(timeout=30)
    assert after.status == TaskStatus.succeeded
    deadline_entries = broker.llen(dlq) - before
    assert deadline_entries == 4
    intake_pools = [p for p in cluster.pools if p.stage == "intake"]
    assert all(p.alive for p in intake_pools)
    reasons = [e.reason for e in DeadLetterStore(broker).list(limit=4, queue=dlq)]
    assert any("undecodable" in r for r in reasons) and any("unknown task" in r for r in reasons)


def test_threads_pools_take_hops_only_through_their_batch_feeders(
    client: Client, cluster: Cluster
) -> None:
    """Celery's consumer leaves a tier queue to the feeder (tasks/lifecycle.py: Celery logs the
    cancel), and the intake queue too in a threads classifier (a prefork one keeps it for its
    children: test_prefork_child.py), while the remote-control `active_queues` that Flower shows
    still names the queue each pool serves (broker/consumer.py)."""
    names = {f"{p.stage}.{p.process.pid}": p.stage for p in cluster.pools}
    replies = client.app.control.inspect(timeout=3.0).active_queues() or {}
    consumed = {
        names[worker.split("@")[0]]: [queue["name"] for queue in queues]
        for worker, queues in replies.items()
        if worker.split("@")[0] in names
    }
    assert consumed == {stage: [queue_for(stage)] for stage in ("intake", "low", "mid", "high")}
    for pool in cluster.pools:
        cancelled = f"Canceling queue {queue_for(pool.stage)}" in pool.log.read_text()  # type: ignore[arg-type]
        assert cancelled, pool.stage
    done = client.submit("Rename the variable tmp to total in cart.py.").result(timeout=30)
    assert done.status == TaskStatus.succeeded and done.tier_path == ["low"]


def test_bad_input_is_refused_before_anything_is_enqueued(client: Client) -> None:
    broker = redis.Redis.from_url(client.settings.broker_url)
    before = queue_depth(broker, queue_for("intake"))  # every SLA class's list of it
    with pytest.raises(ValueError, match="max_teir"):
        client.submit({"prompt": "hi", "max_teir": "low"})
    with pytest.raises(ValueError, match="limit is"):
        client.submit({"prompt": "x" * 500_000})
    with pytest.raises(ValueError):
        client.submit_many(["fine", {"prompt": ""}])
    assert queue_depth(broker, queue_for("intake")) == before


def test_idempotency_key_deduplicates_submissions(client: Client) -> None:
    request = TaskRequest(prompt="Add a docstring to parse_date.", idempotency_key="idem-int-1")
    first, second = client.submit(request), client.submit(request)
    assert first.id == second.id and first.created and not second.created
    assert first.result(timeout=30).status == TaskStatus.succeeded


def test_asyncio_producers_submit_and_await(client: Client) -> None:
    async def agent() -> list[TaskStatus]:
        handles = await asyncio.gather(
            *(client.asubmit(f"Add a type hint to helper_{i}.") for i in range(5))
        )
        results = await asyncio.gather(*(h.aresult(timeout=30) for h in handles))
        return [r.status for r in results]

    assert asyncio.run(agent()) == [TaskStatus.succeeded] * 5
