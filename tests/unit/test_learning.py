"""The worker side of learning on fakeredis: records, starting shadows, filing their verdicts."""

from __future__ import annotations

import asyncio
from typing import Any

import fakeredis
import httpx
import pytest

from parjanya import keys
from parjanya.app import create_app
from parjanya.broker.publish import HopPublisher
from parjanya.config import ParjanyaConfig, RoutingConfig, Settings
from parjanya.queues import Tier
from parjanya.schema import HopMessage, RoutingDecision, TaskRequest, TaskResult, TaskStatus
from parjanya.store import TaskStore
from parjanya.store.outbox import Outbox
from parjanya.store.outcomes import OutcomeLog
from parjanya.worker.learning import Learning
from tests.unit.store_calls import claim_hop

PROMPT = "Apply the VAT reverse charge to invoice 1832."


def _apart_outbox(config: ParjanyaConfig) -> Outbox:
    """The store and broker are not one Redis here: every hop is published after the write."""
    app = create_app(Settings(broker_url="redis://127.0.0.1:1/0"), config)  # never connected
    return Outbox(app, "redis://127.0.0.1:1/1")


def _answer(
    store: TaskStore, request: TaskRequest, tier: Tier, output: str, **create: Any
) -> TaskResult:
    """A task that went all the way to `succeeded` on `tier`, through the store's own scripts."""
    task_id = store.create(request, requeue_after_s=600, **create).task_id
    claim = claim_hop(store, task_id, holding=TaskStatus.running)
    assert claim.doc is not None
    doc = claim.doc
    doc.status, doc.output, doc.tier_path = TaskStatus.succeeded, output, [tier]
    doc.routing = RoutingDecision.model_validate(
        {
            "tier": tier,
            "max_tier": request.max_tier or "high",
            "complexity": {
                "score": 2.0,
                "domain": "general",
                "dimensions": dict.fromkeys(
                    ("structural", "cognitive", "context", "ambiguity", "risk"), 1.0
                ),
            },
        }
    )
    assert store.transition(doc, token=claim.token, hop=0, stage="intake", ttl_s=600)
    return doc


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> tuple[TaskStore, Learning, list[HopMessage]]:
    server = fakeredis.FakeServer()
    store = TaskStore(fakeredis.FakeRedis(server=server))
    published: list[HopMessage] = []
    monkeypatch.setattr(HopPublisher, "publish", lambda self, hop: published.append(hop))
    config = ParjanyaConfig(routing=RoutingConfig(shadow_rate=1.0))
    learning = Learning(
        store,
        _apart_outbox(config),
        fakeredis.FakeAsyncRedis(server=server),
        config,
    )
    return store, learning, published


def _entries(store: TaskStore) -> list[tuple[str, str, str | None, float | None]]:
    log = OutcomeLog(store.redis, max_records=1000, retention_s=3600)
    return [(e.kind, e.task_id, e.shadow_id, e.quality) for e in log.read()]


def test_an_answer_is_recorded_and_shadowed_one_tier_up_as_a_task_of_its_own(
    world: tuple[TaskStore, Learning, list[HopMessage]],
) -> None:
    store, learning, published = world
    request = TaskRequest(prompt=PROMPT, idempotency_key="caller-1", budget_usd=0.01)
    original = _answer(store, request, "low", "Sure. Final answer: 7.")
    before = store.redis.hgetall(keys.task(original.id))

    asyncio.run(learning.answered(request, original))

    assert _entries(store) == [("answered", original.id, None, None)]
    (hop,) = published
    assert hop.stage == "intake" and hop.task_id != original.id
    shadow = store.get(hop.task_id)
    pinned = store.get_request(hop.task_id)
    assert shadow is not None and shadow.shadow_of == original.id
    assert pinned is not None and (pinned.min_tier, pinned.max_tier) == ("mid", "mid")
    assert pinned.idempotency_key is None and pinned.budget_usd is None
    assert store.redis.hgetall(keys.task(original.id)) == before  # not touched
    assert store.counters()["shadows_started"] == 1


def test_a_finished_shadow_files_a_verdict_and_is_neither_recorded_nor_shadowed(
    world: tuple[TaskStore, Learning, list[HopMessage]],
) -> None:
    store, learning, published = world
    request = TaskRequest(prompt=PROMPT)
    original = _answer(store, request, "low", "Sure. Final answer: 7.")
    pinned = TaskRequest(prompt=PROMPT, min_tier="mid", max_tier="mid")
    wrong = _answer(store, pinned, "mid", "Final answer: 9.", shadow_of=original.id)
    agreeing = _answer(store, pinned, "mid", "Indeed, final answer: 7", shadow_of=original.id)

    asyncio.run(learning.answered(pinned, wrong))
    asyncio.run(learning.answered(pinned, agreeing))

    assert _entries(store) == [
        ("shadow", original.id, wrong.id, 0.0),
        ("shadow", original.id, agreeing.id, 1.0),
    ]
    assert published == []  # a shadow is never shadowed


@pytest.mark.parametrize(
    ("tier", "max_tier", "rate"),
    [("high", "high", 1.0), ("low", "low", 1.0), ("low", "high", 0.0)],
)
def test_no_shadow_above_the_top_or_the_tasks_max_tier_or_at_rate_zero(
    world: tuple[TaskStore, Learning, list[HopMessage]], tier: Tier, max_tier: Tier, rate: float
) -> None:
    store, learning, published = world
    learning.config = learning.config.model_copy(
        update={"routing": RoutingConfig(shadow_rate=rate)}
    )
    request = TaskRequest(prompt=PROMPT, max_tier=max_tier)
    asyncio.run(learning.answered(request, _answer(store, request, tier, "Final answer: 1.")))
    assert published == [] and [e[0] for e in _entries(store)] == ["answered"]


def test_a_shadow_judge_must_be_a_configured_deployment_and_is_used_when_it_is() -> None:
    with pytest.raises(ValueError, match="'judge-small' is not a configured deployment"):
        ParjanyaConfig(routing=RoutingConfig(shadow_judge="judge-small"))
    server = fakeredis.FakeServer()
    config = ParjanyaConfig(routing=RoutingConfig(shadow_rate=1.0, shadow_judge="sim-small"))
    learning = Learning(
        TaskStore(fakeredis.FakeRedis(server=server)),
        _apart_outbox(config),
        fakeredis.FakeAsyncRedis(server=server),
        config,
        httpx.AsyncClient(),
    )
    assert learning.comparator.name == "judge sim-small"


def test_a_record_that_cannot_be_written_does_not_cost_the_shadow(
    world: tuple[TaskStore, Learning, list[HopMessage]], caplog: pytest.LogCaptureFixture
) -> None:
    store, learning, published = world

    async def broken(*_: object) -> None:
        raise ConnectionError("stream unavailable")

    learning._append = broken  # type: ignore[assignment,method-assign]
    request = TaskRequest(prompt=PROMPT)
    asyncio.run(learning.answered(request, _answer(store, request, "low", "Final answer: 1.")))
    assert len(published) == 1 and "record of task" in caplog.text
