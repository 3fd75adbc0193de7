"""The hop log: one JSON event per hop with a fixed shape, readable columns on a terminal, and
never a prompt's text."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import UTC, datetime

import pytest
import structlog

from parjanya import results
from parjanya.observe.hop_log import HopLog
from parjanya.observe.hops import HopEnd, HopObservers, HopStart, outcome_of
from parjanya.observe.logs import configure_logging, resolve_format
from parjanya.schema import Attempt, HopMessage, TaskRequest, TaskResult, TaskStatus
from parjanya.store import Claim
from parjanya.worker.observed import observed, observed_async

SECRET = "the-launch-code-is-0451"
HOP_KEYS = {"task_id", "tenant", "tier", "stage", "name", "hop", "outcome", "model", "ms"}


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


class Ctx:
    """What the observed wrappers use of a worker context: its hop observers."""

    def __init__(self) -> None:
        self.hops = HopObservers([HopLog()])


def claimed(prompt: str, tenant: str | None = "acme") -> Claim:
    request = TaskRequest(prompt=prompt, tenant=tenant)
    doc = TaskResult(id="t1", status=TaskStatus.running, tenant=tenant)
    results.open_hop(doc, 1, "mid")
    doc.status = TaskStatus.running
    return Claim(verdict="claimed", token="x", request=request, doc=doc)


def finish(ctx: object, message: HopMessage, claim: Claim) -> None:
    assert claim.doc is not None
    now = datetime.now(UTC)
    results.record(
        claim.doc,
        Attempt(
            hop=1,
            stage="mid",
            tier="mid",
            model="sim-medium",
            outcome="ok",
            started_at=now,
            finished_at=now,
        ),
    )
    claim.doc.output = f"answer mentioning {SECRET}"
    results.end(claim.doc, 1, TaskStatus.succeeded)


def test_a_hop_is_one_json_event_with_its_fields_and_no_prompt_text(out: io.StringIO) -> None:
    message = HopMessage(task_id="t1", hop=1, stage="mid")
    observed(finish)(Ctx(), message, claimed(f"Summarise {SECRET} please"))  # type: ignore[arg-type]

    (event,) = [e for e in lines(out) if e["event"] == "hop"]
    assert set(event) >= HOP_KEYS, event
    assert event["task_id"] == "t1" and event["hop"] == 1 and event["tenant"] == "acme"
    assert event["tier"] == "mid" and event["name"] == "parjanya.tier.mid"
    assert event["outcome"] == "finished" and event["model"] == "sim-medium"
    assert isinstance(event["ms"], float) and event["ms"] >= 0
    assert event["level"] == "info" and event["logger"] == "parjanya.hop" and event["timestamp"]
    assert SECRET not in out.getvalue()


def test_an_async_hop_that_raises_is_logged_as_an_error_and_the_error_goes_on(
    out: io.StringIO,
) -> None:
    async def boom(ctx: object, message: HopMessage, claim: Claim) -> None:
        raise RuntimeError(SECRET)

    message = HopMessage(task_id="t1", hop=1, stage="mid")
    with pytest.raises(RuntimeError):
        asyncio.run(observed_async(boom)(Ctx(), message, claimed("hi")))  # type: ignore[arg-type]
    (event,) = [e for e in lines(out) if e["event"] == "hop"]
    assert event["outcome"] == "error" and event["error_type"] == "RuntimeError"
    assert event["level"] == "warning"
    assert SECRET not in out.getvalue()


def test_fields_named_like_text_are_hidden_in_any_event_unless_asked_for(out: io.StringIO) -> None:
    log = structlog.get_logger("parjanya.test")
    log.info("debugging", prompt=SECRET, messages=[SECRET], output=SECRET, tenant="acme")
    (event,) = lines(out)
    assert event["prompt"] == event["messages"] == event["output"] == "[hidden]"
    assert event["tenant"] == "acme"
    assert SECRET not in out.getvalue()

    shown = io.StringIO()
    configure_logging("json", stream=shown, show_text=True)
    structlog.get_logger("parjanya.test").info("debugging", prompt=SECRET)
    assert SECRET in shown.getvalue()


def test_stdlib_records_come_out_in_the_same_json_shape(out: io.StringIO) -> None:
    logging.getLogger("celery.apps.worker").info("%s ready.", "low.1@host")
    (event,) = lines(out)
    assert event["event"] == "low.1@host ready." and event["logger"] == "celery.apps.worker"


def test_a_terminal_gets_columns_and_anything_else_json() -> None:
    assert resolve_format("auto", Tty()) == "console"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("json", Tty()) == "json"
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        tty = Tty()
        assert configure_logging("auto", stream=tty) == "console"
        HopLog().ended(HopEnd(HopStart("t9", 2, "high", "acme"), "escalated", 3.5, "big"))
        text = tty.getvalue()
        assert "hop" in text and "task_id=t9" in text and "outcome=escalated" in text
        assert not text.lstrip().startswith("{")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()


def test_configuring_twice_does_not_double_lines(out: io.StringIO) -> None:
    configure_logging("json", stream=out)
    logging.getLogger("parjanya.x").warning("once")
    assert len(lines(out)) == 1


@pytest.mark.parametrize(
    ("status", "stage", "next_hop", "expected"),
    [
        (TaskStatus.succeeded, "low", False, "finished"),
        (TaskStatus.dead_lettered, "high", False, "dead_lettered"),
        (TaskStatus.failed, "intake", False, "failed"),
        (TaskStatus.cancelled, "mid", False, "cancelled"),
        (TaskStatus.queued, "intake", True, "routed"),
        (TaskStatus.queued, "low", True, "escalated"),
        (TaskStatus.running, "low", False, "interrupted"),
    ],
)
def test_the_outcome_is_read_from_the_task_the_hop_left(
    status: TaskStatus, stage: str, next_hop: bool, expected: str
) -> None:
    doc = TaskResult(id="t", status=status)
    results.open_hop(doc, 1, stage)  # type: ignore[arg-type]
    if next_hop:
        results.open_hop(doc, 2, "mid")
    doc.status = status
    assert outcome_of(doc, 1, stage)[0] == expected  # type: ignore[arg-type]
    assert outcome_of(None, 1, "low") == ("skipped", None)


def test_one_failing_observer_neither_stops_the_others_nor_the_hop() -> None:
    seen: list[str] = []

    class Broken:
        def started(self, hop: HopStart) -> None:
            raise RuntimeError("observer bug")

        def ended(self, hop: HopEnd) -> None:
            raise RuntimeError("observer bug")

    class Recorder:
        def started(self, hop: HopStart) -> None:
            seen.append("started")

        def ended(self, hop: HopEnd) -> None:
            seen.append(hop.outcome)

    observers = HopObservers([Broken(), Recorder()])
    start = HopStart("t", 0, "intake")
    observers.started(start)
    observers.ended(HopEnd(start, "routed", 1.0))
    assert seen == ["started", "routed"]
