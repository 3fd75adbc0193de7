"""`parjanya submit --file`: a bad line names its line and field and nothing is submitted; the
summary's arithmetic. Submitting and watching a real batch: tests/integration/test_cli.py."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from parjanya.cli import batch
from parjanya.cli.batch import Watched, read_tasks, summary
from parjanya.cli.main import app
from parjanya.limits import DEFAULT_LIMITS
from parjanya.schema import TaskResult, TaskStatus, utcnow

GOOD = json.dumps({"prompt": "Say hi."})


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_bad_line_is_named_with_its_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        GOOD,
        "",
        json.dumps({"prompt": "x", "budget_usd": -1}),
        "{not json",
        json.dumps(["a list"]),
        json.dumps({"prompt": "x", "callback_url": "ftp://x"}),
    )
    tasks, errors = read_tasks(path, DEFAULT_LIMITS)

    assert [line for line, _ in tasks] == [1]
    assert [(e.line, e.field) for e in errors] == [
        (3, "budget_usd"),
        (4, None),
        (5, None),
        (6, "callback_url"),
    ]
    assert str(errors[0]).startswith("line 3, field budget_usd:")


def test_a_bad_file_submits_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_client(*args: object, **kwargs: object) -> None:
        raise AssertionError("nothing may be submitted from an invalid file")

    monkeypatch.setattr(batch, "Client", no_client)
    path = write(tmp_path, GOOD, json.dumps({"prompt": "x", "sla": "urgent"}))

    answer = CliRunner().invoke(app, ["submit", "--file", str(path), "--json"])

    assert answer.exit_code == 2
    report = json.loads(answer.stdout)
    assert report["submitted"] == 0
    assert [(e["line"], e["field"]) for e in report["errors"]] == [(2, "sla")]


def test_a_prompt_and_a_file_together_are_refused(tmp_path: Path) -> None:
    answer = CliRunner().invoke(app, ["submit", "hi", "--file", str(write(tmp_path, GOOD))])
    assert answer.exit_code == 2


def _result(task_id: str, tiers: list[str], seconds: float, **extra: object) -> TaskResult:
    start = utcnow()
    return TaskResult(
        id=task_id,
        status=extra.pop("status", TaskStatus.succeeded),  # type: ignore[arg-type]
        tier_path=tiers,  # type: ignore[arg-type]
        created_at=start,
        finished_at=start + timedelta(seconds=seconds),
        **extra,  # type: ignore[arg-type]
    )


def test_the_summary_groups_by_the_tier_each_task_ended_on() -> None:
    results = [
        _result("a", ["low"], 1.0, cost_usd=0.001),
        _result("b", ["low", "mid"], 3.0, cost_usd=0.01, escalations=1),
        _result("c", ["mid"], 2.0, cost_usd=0.02, status=TaskStatus.dead_lettered),
    ]
    watched = Watched(["a", "b", "c", "d"], {r.id: r for r in results})

    got = summary(watched)

    assert got["by_tier"]["low"]["tasks"] == 1 and got["by_tier"]["mid"]["tasks"] == 2
    assert got["by_tier"]["mid"]["escalated"] == 1 and got["by_tier"]["mid"]["failed"] == 1
    assert got["total"]["cost_usd"] == pytest.approx(0.031)
    assert got["total"]["latency_p50_s"] == pytest.approx(2.0)
    assert got["unfinished"] == 1
    assert watched.counts() == {"low": 1, "mid": 2, "high": 0, "escalated": 1, "failed": 1}
