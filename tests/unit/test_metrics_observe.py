"""What a hop reports: bounded tenant labels, tokens and cost per model, latency, outcomes."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import REGISTRY

from parjanya.config import MetricsConfig
from parjanya.schema import Attempt, TaskResult, TaskStatus, utcnow
from parjanya.worker import observe
from parjanya.worker.observe import HopMetrics, TenantLabels


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_listed_tenants_keep_their_name_and_others_are_bounded() -> None:
    label = TenantLabels(["acme"], max_tenants=2)
    assert [label(t) for t in ("t1", "t2", "t3", "acme", "t1", None)] == [
        "t1",
        "t2",
        "_other",
        "acme",
        "t1",
        "_none",
    ]
    assert TenantLabels([], max_tenants=0)("anyone") == "_other"


def test_attempts_add_tokens_cost_and_model_latency_per_tier_model_and_tenant() -> None:
    hop = HopMetrics(MetricsConfig(max_tenants=0, tenants=["obs-paying"]))
    start = utcnow()
    paid = Attempt(
        hop=1,
        stage="low",
        tier="low",
        deployment="low-a",
        model="obs-model",
        outcome="ok",
        tokens_in=100,
        tokens_out=20,
        cost_usd=0.25,
        started_at=start,
        finished_at=start + timedelta(seconds=0.3),
    )
    cached = paid.model_copy(
        update={"outcome": "cached", "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0}
    )
    before = {
        "cost": _sample(
            "parjanya_cost_usd_total", tier="low", model="obs-model", tenant="obs-paying"
        ),
        "other": _sample("parjanya_cost_usd_total", tier="low", model="obs-model", tenant="_other"),
        "count": _sample("parjanya_model_latency_seconds_count", tier="low", model="obs-model"),
        "out": _sample(
            "parjanya_tokens_total",
            tier="low",
            model="obs-model",
            tenant="obs-paying",
            direction="output",
        ),
    }
    hop.attempts("low", "obs-paying", [paid, cached])
    hop.attempts("low", "someone-else", [paid])

    labels = dict(tier="low", model="obs-model")
    assert (
        _sample("parjanya_cost_usd_total", tenant="obs-paying", **labels) - before["cost"] == 0.25
    )
    assert _sample("parjanya_cost_usd_total", tenant="_other", **labels) - before["other"] == 0.25
    assert (
        _sample("parjanya_tokens_total", tenant="obs-paying", direction="output", **labels)
        - before["out"]
        == 20
    )
    # Two paid calls sampled; the cached answer took no model time.
    assert _sample("parjanya_model_latency_seconds_count", **labels) - before["count"] == 2


def test_an_ended_task_is_counted_with_its_submit_to_end_latency() -> None:
    created = utcnow() - timedelta(seconds=3)
    doc = TaskResult(id="t-obs", status=TaskStatus.dead_lettered, created_at=created)
    doc.finished_at = created + timedelta(seconds=2.5)
    labels = dict(tier="high", status="dead_lettered")
    before = _sample("parjanya_tasks_total", **labels)
    le_3 = _sample("parjanya_task_latency_seconds_bucket", le="3.0", **labels)
    le_2 = _sample("parjanya_task_latency_seconds_bucket", le="2.0", **labels)

    observe.ended(doc, "high")

    assert _sample("parjanya_tasks_total", **labels) - before == 1
    assert _sample("parjanya_task_latency_seconds_bucket", le="3.0", **labels) - le_3 == 1
    assert _sample("parjanya_task_latency_seconds_bucket", le="2.0", **labels) - le_2 == 0
