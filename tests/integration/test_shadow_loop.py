"""Learning from production, closed on the sim over real sockets: shadow, export, train, route.

The workload has a hidden difficulty the shipped scorer cannot see: `sim-small` has a blind spot
(`SimModel.blind_spots`), the VAT "reverse charge", on which it answers wrong while sounding sure.
Every prompt is short and routine, so the classifier sends all of them to the low tier, and the
confidence check passes every answer, so escalation never catches a miss. Only a shadow run can:
with `routing.shadow_rate: 1.0` each low answer is asked again on mid, and the two final answers
disagree exactly on the blind spot. `parjanya outcomes export` turns that into training rows,
`parjanya train --ngrams` fits a scorer on them (the hashed n-grams are the stage meant for a
deployment's own recurring kinds of task), and with `routing.scorer: learned` fresh prompts of the
same kinds (other invoices, other cities, never trained on) are routed again.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from parjanya.client import Client
from parjanya.learn.agreement import final_answer
from parjanya.learn.outcomes import Outcome, read_outcomes
from parjanya.learn.records import OutcomeRecord
from parjanya.schema import TaskRequest, TaskResult, TaskStatus
from parjanya.sim.answers import final_answer_code
from parjanya.sim.config import SimConfig
from parjanya.sim.server import SimServer
from parjanya.store.outcomes import OutcomeLog

from .conftest import make_cluster

pytestmark = pytest.mark.integration

BLIND_SPOT = "reverse charge"
HARD = (
    "Apply the VAT reverse charge to invoice {n} from the {city} supplier.",
    "Does the reverse charge rule cover invoice {n} for {city}?",
    "Book invoice {n} from {city} under the reverse charge scheme.",
)
EASY = (
    "Apply the early-payment discount to invoice {n} from the {city} supplier.",
    "Rename the variable tmp to total in invoice_{n}.py.",
    "Book invoice {n} from {city} under the standard scheme.",
    "Add a docstring to parse_invoice in the {city} billing module.",
)
TRAIN_CITIES = ("Dublin", "Lyon", "Porto", "Gdansk", "Turin", "Ghent", "Malmo", "Brno", "Leeds")
EVAL_CITIES = ("Bergen", "Split", "Aarhus", "Bilbao", "Cork", "Basel")

#: What training must buy: the share of blind-spot prompts routed above low rises by at least
#: this much (from none), while easy prompts keep going to low at least this often.
HARD_ROUTED_UP_GAIN = 0.5
EASY_STAY_LOW = 0.8


def workload(cities: tuple[str, ...], first_invoice: int) -> list[tuple[str, str]]:
    """(kind, prompt) for every template and city; invoice numbers differ between sets."""
    return [
        (kind, template.format(n=first_invoice + 37 * i, city=city))
        for kind, templates in (("hard", HARD), ("easy", EASY))
        for template in templates
        for i, city in enumerate(cities)
    ]


def right(prompt: str, answer: str | None) -> bool:
    """Did the answer state the sim's correct final answer (the one every right model gives)?"""
    return final_answer(answer or "") == final_answer_code("", prompt, correct=True)


@dataclass
class Shadowed:
    prompts: list[tuple[str, str]]
    answered: list[TaskResult]  # what each caller got
    reread: list[TaskResult]  # the same tasks read again once every shadow had finished
    shadows: dict[str, TaskResult]  # original id -> its shadow task's result
    outcomes: list[Outcome]  # `parjanya outcomes export --shadow-only`, read back
    records: list[OutcomeRecord]  # `parjanya outcomes export --records`
    export: Path
    summary: str


@pytest.fixture(scope="module")
def blind_sim() -> Iterator[SimServer]:
    config = SimConfig(
        latency_scale=0.05, seed=11, models={"sim-small": {"blind_spots": [BLIND_SPOT]}}
    )
    with SimServer(config) as server:
        yield server


def _shadowing(raw: dict[str, Any]) -> None:
    # The shipped default scorer (the bundled learned model), not the heuristic the other
    # integration tests route by: the baseline is what a deployment gets out of the box.
    raw["routing"]["scorer"], raw["routing"]["scorer_model"] = "learned", None
    raw["routing"]["shadow_rate"] = 1.0
    raw["outcomes"]["keep_prompt"] = True


def _export(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "parjanya", "outcomes", "export", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def shadowed(
    redis_url: str, blind_sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Shadowed:
    """The first run, with every answer shadowed; its pools are stopped before any test looks,
    so no classifier of this run is left to compete with a later one for the intake queue."""
    tmp = tmp_path_factory.mktemp("shadow")
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    cluster = make_cluster(redis_url, blind_sim, tmp, mutate=_shadowing)
    prompts = workload(TRAIN_CITIES, 1000)
    try:
        for stage in ("intake", "low", "mid", "high"):
            cluster.start(stage)
        with Client(redis_url, config=cluster.config) as client:
            handles = [  # three tenants: the export's sources, which training groups folds by
                client.submit(TaskRequest(prompt=prompt, tenant=f"team-{i % 3}"))
                for i, (_, prompt) in enumerate(prompts)
            ]
            answered = [handle.result(timeout=180) for handle in handles]
            log = OutcomeLog(client.store.redis, max_records=100_000, retention_s=3600)
            ids = {result.id for result in answered}
            verdicts: dict[str, str] = {}
            deadline = time.monotonic() + 180
            while set(verdicts) != ids and time.monotonic() < deadline:
                time.sleep(0.3)
                verdicts = {
                    e.task_id: e.shadow_id or ""
                    for e in log.read(datetime.fromisoformat(since))
                    if e.kind == "shadow" and e.task_id in ids
                }
            assert set(verdicts) == ids, f"{len(ids - set(verdicts))} shadows never finished"
            shadows = {task_id: client.status(shadow) for task_id, shadow in verdicts.items()}
            reread = [client.status(result.id) for result in answered]
    finally:
        cluster.stop()
    export = tmp / "outcomes.jsonl"
    summary = _export(cluster.env, "-o", str(export), "--since", since, "--shadow-only")
    records = _export(cluster.env, "--since", since, "--records").stdout.splitlines()
    return Shadowed(
        prompts=prompts,
        answered=answered,
        reread=reread,
        shadows=shadows,
        outcomes=list(read_outcomes([export])),
        records=[OutcomeRecord.model_validate_json(line) for line in records],
        export=export,
        summary=summary.stderr,
    )


def test_callers_get_the_low_answer_untouched_while_shadows_run_on_mid(shadowed: Shadowed) -> None:
    for (kind, prompt), result in zip(shadowed.prompts, shadowed.answered, strict=True):
        assert result.status == TaskStatus.succeeded and result.tier_path == ["low"]
        assert result.model == "sim-small" and result.shadow_of is None
        assert not result.low_confidence  # sure of itself, so escalation never looked again
        assert right(prompt, result.output) == (kind == "easy"), (kind, prompt)
    # Once every shadow has finished, each caller's stored result is byte for byte what it got.
    assert [r.model_dump() for r in shadowed.reread] == [r.model_dump() for r in shadowed.answered]
    for (_, prompt), result in zip(shadowed.prompts, shadowed.answered, strict=True):
        shadow = shadowed.shadows[result.id]
        assert shadow.shadow_of == result.id and shadow.id != result.id
        assert shadow.status == TaskStatus.succeeded and shadow.tier_path == ["mid"]
        assert shadow.cost_usd > 0 and shadow.model == "sim-medium"  # billed, on its own record
        assert result.finished_at is not None
        assert shadow.created_at >= result.finished_at  # submitted after the caller's answer
        assert right(prompt, shadow.output)  # mid has no blind spot


def test_the_export_labels_exactly_the_blind_spot_as_needing_the_stronger_tier(
    shadowed: Shadowed,
) -> None:
    kinds = {prompt: kind for kind, prompt in shadowed.prompts}
    assert len(shadowed.outcomes) == len(shadowed.prompts), shadowed.summary
    assert f"exported={len(shadowed.prompts)} shadow={len(shadowed.prompts)}" in shadowed.summary
    for outcome in shadowed.outcomes:
        assert outcome.shadow and outcome.prompt in kinds
        assert outcome.source in {"parjanya/team-0", "parjanya/team-1", "parjanya/team-2"}
        assert set(outcome.results) == {"low", "mid"}
        assert outcome.needs_strong == (kinds[outcome.prompt] == "hard"), outcome.prompt
        assert outcome.results["low"].model == "sim-small"
        assert (outcome.results["low"].cost_usd or 0) > 0
        assert (outcome.results["mid"].cost_usd or 0) > (outcome.results["low"].cost_usd or 0)
    assert len(shadowed.records) == len(shadowed.prompts)
    for record in shadowed.records:
        assert record.tier_path == ["low"] and not record.escalated
        assert record.confidence is not None and record.confidence >= 0.7
        assert record.latency_s is not None and record.latency_s > 0
        assert record.label is not None and record.label.shadow and record.label.higher == "mid"


def test_a_scorer_trained_on_the_export_routes_the_blind_spot_up(
    shadowed: Shadowed,
    redis_url: str,
    blind_sim: SimServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("learned")
    model = tmp / "scorer.model"
    trained = subprocess.run(
        [
            sys.executable,
            "-m",
            "parjanya",
            "train",
            str(shadowed.export),
            "--ngrams",
            "-o",
            str(model),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert trained.returncode == 0, trained.stderr
    assert model.is_file()

    def learned(raw: dict[str, Any]) -> None:
        raw["routing"]["scorer"] = "learned"
        raw["routing"]["scorer_model"] = str(model)

    before = [
        r
        for (kind, _), r in zip(shadowed.prompts, shadowed.answered, strict=True)
        if kind == "hard"
    ]
    before_up = sum(r.routing is not None and r.routing.tier != "low" for r in before)
    fresh = workload(EVAL_CITIES, 5000)
    cluster = make_cluster(redis_url, blind_sim, tmp, mutate=learned)
    try:
        for stage in ("intake", "low", "mid", "high"):
            cluster.start(stage)
        with Client(redis_url, config=cluster.config) as client:
            handles = [(kind, prompt, client.submit(prompt)) for kind, prompt in fresh]
            after = [(kind, prompt, h.result(timeout=180)) for kind, prompt, h in handles]
    finally:
        cluster.stop()

    hard = [(p, r) for kind, p, r in after if kind == "hard"]
    easy = [(p, r) for kind, p, r in after if kind == "easy"]
    hard_up = sum(r.routing is not None and r.routing.tier != "low" for _, r in hard) / len(hard)
    easy_low = sum(r.routing is not None and r.routing.tier == "low" for _, r in easy) / len(easy)
    hard_right = sum(right(p, r.output) for p, r in hard) / len(hard)
    print(
        f"shadow_loop hard_routed_up={hard_up:.2f} easy_low={easy_low:.2f} hard_right={hard_right:.2f}"
    )
    assert before_up == 0  # the shipped scorer sent every hard prompt to low
    assert hard_up >= before_up / len(before) + HARD_ROUTED_UP_GAIN, (hard_up, easy_low)
    assert easy_low >= EASY_STAY_LOW, (hard_up, easy_low)
    assert hard_right >= HARD_ROUTED_UP_GAIN  # and the answers they get are now right
