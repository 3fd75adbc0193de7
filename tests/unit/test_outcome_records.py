"""Outcome records: built from a task's result, private by default, exported in the outcome format.

No Redis beyond fakeredis: the stream's layout and trimming run on fakeredis (Lua included), and
the export reads results from a dict standing in for the store.
"""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fakeredis
import pytest

from parjanya.classify.difficulty import FEATURE_NAMES, difficulty_features
from parjanya.config import OutcomesConfig
from parjanya.learn.export import ExportCounts, collect, write_outcomes, write_records
from parjanya.learn.fit import feature_matrix
from parjanya.learn.outcomes import read_outcomes
from parjanya.learn.records import ShadowVerdict, build_record, to_outcome
from parjanya.queues import Tier
from parjanya.schema import (
    Attempt,
    Complexity,
    DimensionScores,
    PriorAnswer,
    RoutingDecision,
    TaskRequest,
    TaskResult,
    TaskStatus,
)
from parjanya.store.outcomes import OutcomeEntry, OutcomeLog

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PROMPT = "Apply the VAT reverse charge to invoice 1832."


def _attempt(tier: Tier, cost: float, model: str) -> Attempt:
    return Attempt(
        hop=1,
        stage=tier,
        tier=tier,
        model=model,
        outcome="ok",
        cost_usd=cost,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=1),
    )


def _doc(
    task_id: str,
    tiers: list[Tier],
    output: str,
    *,
    pii: list[str] | None = None,
    shadow_of: str | None = None,
) -> TaskResult:
    complexity = Complexity(
        score=2.4,
        dimensions=DimensionScores(structural=1, cognitive=2, context=1, ambiguity=1, risk=1),
        domain="finance",
        pii=pii or [],
    )
    attempts = [_attempt(t, 0.001 * (i + 1), f"sim-{t}") for i, t in enumerate(tiers)]
    return TaskResult(
        id=task_id,
        status=TaskStatus.succeeded,
        output=output,
        model=f"sim-{tiers[-1]}",
        tier_path=tiers,
        complexity=complexity,
        routing=RoutingDecision(tier=tiers[0], complexity=complexity),
        confidence=0.93,
        cost_usd=sum(a.cost_usd for a in attempts),
        attempts=attempts,
        tenant="acme",
        created_at=T0,
        finished_at=T0 + timedelta(seconds=2.5),
        shadow_of=shadow_of,
    )


class Docs:
    """The store's two readers over dicts."""

    def __init__(self) -> None:
        self.results: dict[str, TaskResult] = {}
        self.requests: dict[str, TaskRequest] = {}

    def add(self, doc: TaskResult, prompt: str = PROMPT) -> None:
        self.results[doc.id] = doc
        self.requests[doc.id] = TaskRequest(prompt=prompt)

    def get(self, task_id: str) -> TaskResult | None:
        return self.results.get(task_id)

    def get_request(self, task_id: str) -> TaskRequest | None:
        return self.requests.get(task_id)


# --- the record ---------------------------------------------------------------------------------


def test_a_record_says_how_the_task_went_and_keeps_no_prompt_by_default() -> None:
    record = build_record(
        _doc("t1", ["low", "mid"], "Final answer: 7."), TaskRequest(prompt=PROMPT), OutcomesConfig()
    )
    assert record.tier_path == ["low", "mid"] and record.routed_to == "low"
    assert record.answered_on == "mid" and record.escalated
    assert record.confidence == 0.93 and record.cost_usd == pytest.approx(0.003)
    assert record.latency_s == pytest.approx(2.5)
    assert record.prompt is None and record.messages is None
    assert len(record.prompt_sha256) == 64
    assert record.features is not None and set(record.features) == set(FEATURE_NAMES)
    assert record.features == pytest.approx(dict(difficulty_features(PROMPT)))
    assert record.label is None  # no prior answer, no shadow: nothing compared


@pytest.mark.parametrize(
    ("keep", "keep_pii", "pii", "kept"),
    [
        (True, False, [], True),
        (True, False, ["email"], False),  # PII found: never, unless allowed
        (True, True, ["email"], True),
        (False, True, [], False),
    ],
)
def test_the_prompt_is_kept_only_when_privacy_allows(
    keep: bool, keep_pii: bool, pii: list[str], kept: bool
) -> None:
    config = OutcomesConfig(keep_prompt=keep, keep_pii_prompt=keep_pii)
    record = build_record(_doc("t", ["low"], "x", pii=pii), TaskRequest(prompt=PROMPT), config)
    assert (record.prompt == PROMPT) is kept
    assert (record.features is None) is kept  # features stand in for the text, not beside it


def test_a_shadow_verdict_labels_both_tiers_with_their_costs() -> None:
    original = _doc("t1", ["low"], "Final answer: 7.")
    shadow = _doc("s1", ["mid"], "Final answer: 9.", shadow_of="t1")
    verdict = ShadowVerdict(shadow=shadow, quality=0.0, rule="final_answer", comparator="agreement")
    record = build_record(
        original, TaskRequest(prompt=PROMPT), OutcomesConfig(keep_prompt=True), shadow=verdict
    )
    outcome = to_outcome(record)
    assert outcome is not None and outcome.shadow and outcome.prompt == PROMPT
    assert outcome.results["low"].quality == 0.0 and outcome.results["mid"].quality == 1.0
    assert outcome.results["low"].cost_usd == pytest.approx(0.001)
    assert outcome.results["mid"].model == "sim-mid" and outcome.needs_strong
    assert outcome.source == "parjanya/acme"


def test_a_low_confidence_escalation_is_labelled_by_agreement_but_not_as_shadow() -> None:
    doc = _doc("t2", ["low", "mid"], "Reasoning. Final answer: 12.")
    doc.escalations = 1
    doc.previous_answers = [
        PriorAnswer(tier="low", model="sim-low", output="Guess. Final answer: 11.", confidence=0.3)
    ]
    outcome = to_outcome(build_record(doc, TaskRequest(prompt=PROMPT), OutcomesConfig()))
    assert outcome is not None and not outcome.shadow
    assert outcome.results["low"].quality == 0.0 and outcome.results["mid"].quality == 1.0
    assert outcome.prompt is None and outcome.features is not None


# --- the stream -----------------------------------------------------------------------------------


def test_the_stream_reads_back_what_was_appended_and_since_filters_by_time() -> None:
    log = OutcomeLog(fakeredis.FakeRedis(), max_records=1000, retention_s=3600)
    log.append(OutcomeEntry(kind="answered", task_id="t1"))
    log.append(
        OutcomeEntry(
            kind="shadow",
            task_id="t1",
            shadow_id="s1",
            quality=0.0,
            rule="final_answer",
            comparator="agreement",
        )
    )
    entries = list(log.read())
    assert [(e.kind, e.task_id) for e in entries] == [("answered", "t1"), ("shadow", "t1")]
    assert entries[1].shadow_id == "s1" and entries[1].quality == 0.0
    assert entries[0].at is not None and abs(entries[0].at.timestamp() - time.time()) < 60
    assert list(log.read(since=datetime.now(UTC) + timedelta(minutes=5))) == []
    assert len(list(log.read(page=1))) == 2  # paging by one loses and repeats nothing


def test_the_stream_is_bounded_by_count_and_by_age() -> None:
    client = fakeredis.FakeRedis()
    capped = OutcomeLog(client, max_records=50, retention_s=3600, key="test:capped")
    for i in range(1000):
        capped.append(OutcomeEntry(kind="answered", task_id=f"t{i}"))
    assert len(capped) <= 50 + 100  # MAXLEN ~ trims whole stream nodes (100 entries each)
    aged = OutcomeLog(client, max_records=10_000, retention_s=60, key="test:aged")
    for i in range(500):
        aged.append(OutcomeEntry(kind="answered", task_id=f"t{i}"))
    call_keys, call_args = aged.call(
        OutcomeEntry(kind="answered", task_id="late"), now=time.time() + 3600
    )
    aged.script(keys=call_keys, args=call_args)
    assert len(aged) <= 1 + 100  # everything older than the retention went, node by node


# --- export -------------------------------------------------------------------------------------


def test_export_writes_the_outcome_format_and_read_outcomes_reads_it_back(tmp_path: Path) -> None:
    docs = Docs()
    docs.add(_doc("t1", ["low"], "Final answer: 7."))
    docs.add(_doc("s1", ["mid"], "Final answer: 9.", shadow_of="t1"))
    docs.add(_doc("t2", ["low"], "Final answer: 3."), prompt="Rename tmp to total in cart.py.")
    docs.add(_doc("s2", ["mid"], "Final answer: 3.", shadow_of="t2"))
    docs.add(_doc("t3", ["low"], "Final answer: 1."))  # answered, never shadowed
    entries = [
        OutcomeEntry(kind="answered", task_id="t1"),
        OutcomeEntry(kind="answered", task_id="t2"),
        OutcomeEntry(kind="answered", task_id="t3"),
        OutcomeEntry(kind="answered", task_id="gone"),  # its result expired
        OutcomeEntry(kind="shadow", task_id="t1", shadow_id="s1", quality=0.0, rule="final_answer"),
        OutcomeEntry(kind="shadow", task_id="t2", shadow_id="s2", quality=1.0, rule="final_answer"),
    ]
    config = OutcomesConfig(keep_prompt=True)
    counts = ExportCounts()
    buffer = io.StringIO()
    write_outcomes(collect(entries, docs, config, counts=counts), buffer, counts)
    path = tmp_path / "outcomes.jsonl"
    path.write_text(buffer.getvalue())

    outcomes = list(read_outcomes([path]))
    assert [o.prompt for o in outcomes] == [PROMPT, "Rename tmp to total in cart.py."]
    assert [o.needs_strong for o in outcomes] == [True, False]
    assert all(o.shadow and set(o.results) == {"low", "mid"} for o in outcomes)
    assert (counts.records, counts.written, counts.shadow, counts.missing) == (3, 2, 2, 1)

    records = io.StringIO()
    shadow_only = list(collect(entries, docs, config, shadow_only=True))
    assert [r.task_id for r in shadow_only] == ["t1", "t2"]
    every = ExportCounts()
    write_records(collect(entries, docs, config), records, every)
    assert every.written == 3 and '"task_id":"t3"' in records.getvalue()


def test_a_row_without_its_prompt_trains_on_the_same_features_as_one_with_it() -> None:
    doc = _doc("t1", ["low"], "Final answer: 7.")
    verdict = ShadowVerdict(
        shadow=_doc("s1", ["mid"], "Final answer: 9.", shadow_of="t1"),
        quality=0.0,
        rule="final_answer",
        comparator="agreement",
    )
    rows = [
        to_outcome(build_record(doc, TaskRequest(prompt=PROMPT), config, shadow=verdict))
        for config in (OutcomesConfig(keep_prompt=True), OutcomesConfig(keep_prompt=False))
    ]
    with_text, without_text = rows
    assert with_text is not None and without_text is not None
    assert without_text.prompt is None and without_text.text == ""
    assert feature_matrix([without_text]) == pytest.approx(feature_matrix([with_text]))
