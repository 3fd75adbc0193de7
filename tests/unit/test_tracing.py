"""Tracing (the `otel` extra): one trace follows a task from the classifier hop through its tier
hops and escalations, carried in each hop's queue message; off by default, and off it changes
nothing on the wire."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError

from parjanya.broker.decode import decode_args
from parjanya.config import Settings
from parjanya.observe.hops import HopEnd, HopObservers, HopStart
from parjanya.observe.tracing import NoTracing, OtelTracing, ambient_traceparent, tracing_for
from parjanya.queues import Stage
from parjanya.schema import HopMessage, TaskRequest
from parjanya.store import TaskStore

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def exported() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exported: InMemorySpanExporter) -> OtelTracing:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    return OtelTracing(provider.get_tracer("test"))


def run_hop(
    tracing: OtelTracing, hop: int, stage: Stage, carried: str | None, outcome: str
) -> str | None:
    """One hop as the worker runs it: observed from start to end, handing its context on."""
    observers = HopObservers(tracing.observers())
    start = HopStart("t1", hop, stage, "acme", traceparent=carried)
    observers.started(start)
    handed_on = tracing.traceparent()  # what the next hop's HopMessage carries
    observers.ended(HopEnd(start, outcome, 2.0, None if stage == "intake" else "m"))
    return handed_on


def test_one_trace_follows_a_task_through_classifier_tier_and_escalation(
    tracing: OtelTracing, exported: InMemorySpanExporter
) -> None:
    to_low = run_hop(tracing, 0, "intake", None, "routed")
    to_mid = run_hop(tracing, 1, "low", to_low, "escalated")
    run_hop(tracing, 2, "mid", to_mid, "finished")

    spans = {s.name: s for s in exported.get_finished_spans()}
    assert list(spans) == ["parjanya.intake", "parjanya.tier.low", "parjanya.tier.mid"]
    classifier, low, mid = spans.values()
    assert len({s.context.trace_id for s in spans.values()}) == 1
    assert classifier.parent is None
    assert low.parent is not None and low.parent.span_id == classifier.context.span_id
    assert mid.parent is not None and mid.parent.span_id == low.context.span_id
    assert mid.attributes is not None
    assert mid.attributes["parjanya.tier"] == "mid" and mid.attributes["parjanya.tenant"] == "acme"
    assert mid.attributes["parjanya.outcome"] == "finished" and mid.attributes["parjanya.hop"] == 2
    assert tracing.traceparent() is None  # every hop's context was detached


def test_a_carried_context_from_a_producer_becomes_the_parent(
    tracing: OtelTracing, exported: InMemorySpanExporter
) -> None:
    run_hop(tracing, 0, "intake", TRACEPARENT, "routed")
    (span,) = exported.get_finished_spans()
    assert format(span.context.trace_id, "032x") == TRACEPARENT.split("-")[1]


def test_a_failed_hop_is_an_error_span(
    tracing: OtelTracing, exported: InMemorySpanExporter
) -> None:
    run_hop(tracing, 1, "high", None, "dead_lettered")
    (span,) = exported.get_finished_spans()
    assert not span.status.is_ok and span.status.description == "dead_lettered"


def test_off_by_default_and_then_no_span_and_no_context() -> None:
    tracing = tracing_for(Settings())
    assert isinstance(tracing, NoTracing)
    assert tracing.observers() == [] and tracing.traceparent() is None


def test_the_context_travels_in_the_hop_message_and_is_absent_without_tracing() -> None:
    plain = HopMessage(task_id="t1", hop=1, stage="low")
    assert plain.model_dump(exclude_none=True) == {
        "task_id": "t1",
        "hop": 1,
        "stage": "low",
        "sla": "standard",
    }
    traced = HopMessage(task_id="t1", hop=1, stage="low", traceparent=TRACEPARENT)
    assert decode_args([traced.model_dump(exclude_none=True)], {}) == traced
    with pytest.raises(ValidationError):
        HopMessage(task_id="t1", hop=1, stage="low", traceparent="not a trace context")


def test_a_producers_span_becomes_the_parent_of_the_first_hop(
    tracing: OtelTracing, exported: InMemorySpanExporter, store: TaskStore
) -> None:
    assert ambient_traceparent() is None  # no span: nothing carried
    tracer = tracing.spans.tracer
    carried: list[HopMessage] = []
    with tracer.start_as_current_span("agent.plan") as producer:
        store.create(
            TaskRequest(prompt="Rename tmp."),
            requeue_after_s=60,
            enqueue=lambda message: carried.append(message),  # type: ignore[func-returns-value]
        )
    (first,) = carried
    assert first.traceparent is not None and first.hop == 0
    run_hop(tracing, 0, "intake", first.traceparent, "routed")
    classifier = next(s for s in exported.get_finished_spans() if s.name == "parjanya.intake")
    assert classifier.parent is not None
    assert classifier.parent.span_id == producer.get_span_context().span_id
