"""OpenTelemetry spans per hop, one trace per task: classifier -> tier -> escalations (`otel` extra).

Decided once per worker (`tracing_for(settings)`): `NoTracing` unless `PARJANYA_OTEL=1`, and then
`OtelTracing`, which needs the `otel` extra (`pip install 'parjanya[otel]'`). Off, nothing here
imports OpenTelemetry and a hop pays nothing.

On, each hop is a span named like the hop (`parjanya.intake`, `parjanya.tier.<tier>`) with the
task id, hop, stage, tier, tenant, outcome and model as attributes (never prompt text), and the
hop's context travels to the next hop in its queue message: `HopMessage.traceparent`, the W3C
`traceparent` of the span that handed the task on. So the classifier's span is the parent of the
first tier's, whose span is the parent of the escalation's: one trace follows the task. A hop the
reaper republishes (its worker died) starts a new trace, linked by the task id attribute.

Exporting: if the process has no tracer provider of its own, one is built with a batch OTLP/HTTP
exporter, configured by OpenTelemetry's own variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,
`OTEL_SERVICE_NAME`, ...).
"""

from __future__ import annotations

import sys
import threading
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Protocol

from parjanya.observe.hops import HopEnd, HopObserver, HopStart

if TYPE_CHECKING:
    from parjanya.config import Settings


class Tracing(Protocol):
    def observers(self) -> list[HopObserver]:
        """Hop observers that record spans (none when tracing is off)."""
        ...

    def traceparent(self) -> str | None:
        """The W3C `traceparent` of the running hop's span, for the message of the next hop."""
        ...


class NoTracing:
    def observers(self) -> list[HopObserver]:
        return []

    def traceparent(self) -> str | None:
        return None


class HopSpans:
    """A hop observer: a span from `started` to `ended`, current meanwhile (same thread/task)."""

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer
        self._lock = threading.Lock()
        self._open: dict[str, tuple[Any, object]] = {}

    def started(self, hop: HopStart) -> None:
        from opentelemetry import context, propagate, trace

        parent = propagate.extract({"traceparent": hop.traceparent}) if hop.traceparent else None
        attributes: dict[str, Any] = {
            "parjanya.task_id": hop.task_id,
            "parjanya.hop": hop.hop,
            "parjanya.stage": hop.stage,
        }
        if hop.tier is not None:
            attributes["parjanya.tier"] = hop.tier
        if hop.tenant is not None:
            attributes["parjanya.tenant"] = hop.tenant
        span = self.tracer.start_span(
            hop.name, context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes
        )
        token = context.attach(trace.set_span_in_context(span))
        with self._lock:
            self._open[hop.uuid] = (span, token)

    def ended(self, hop: HopEnd) -> None:
        from opentelemetry import context, trace

        with self._lock:
            opened = self._open.pop(hop.start.uuid, None)
        if opened is None:
            return
        span, token = opened
        span.set_attribute("parjanya.outcome", hop.outcome)
        span.set_attribute("parjanya.ms", hop.ms)
        if hop.model is not None:
            span.set_attribute("parjanya.model", hop.model)
        if not hop.ok:
            span.set_status(trace.Status(trace.StatusCode.ERROR, hop.error_type or hop.outcome))
        span.end()
        with suppress(ValueError):  # ended in another context than it started: nothing to undo
            context.detach(token)  # type: ignore[arg-type]


class OtelTracing:
    def __init__(self, tracer: Any) -> None:
        self.spans = HopSpans(tracer)

    @classmethod
    def start(cls, service_name: str = "parjanya-worker") -> OtelTracing:
        from opentelemetry import trace

        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            trace.set_tracer_provider(_otlp_provider(service_name))
        return cls(trace.get_tracer("parjanya"))

    def observers(self) -> list[HopObserver]:
        return [self.spans]

    def traceparent(self) -> str | None:
        from opentelemetry import propagate

        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return carrier.get("traceparent")


def _otlp_provider(service_name: str) -> Any:
    """An SDK provider exporting over OTLP/HTTP (the `otel` extra), named `OTEL_SERVICE_NAME`."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:  # the SDK without an exporter: spans are made, then dropped
        return provider
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def ambient_traceparent() -> str | None:
    """The caller's current span as a W3C `traceparent`, for a task's first hop message.

    A producer (an agent framework, the HTTP API) that traces its own work makes the classifier's
    span a child of its span, so the trace starts at submission. Nothing is imported here: a
    process that never loaded OpenTelemetry pays one dictionary look-up.
    """
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def tracing_for(settings: Settings) -> Tracing:
    """Decided once per process: spans only when `PARJANYA_OTEL=1` (and the extra installed)."""
    return OtelTracing.start() if settings.otel else NoTracing()
