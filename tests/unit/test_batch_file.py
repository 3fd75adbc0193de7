"""`parjanya submit --file`: a bad line names its line and field and nothing is submitted; the
summary's arithmetic. Submitting and watching a real batch: tests/integration/test_cli.py."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import fakeredis
import pytest
from rich.console import Console
from typer.testing import CliRunner

from parjanya.cli import batch
from parjanya.cli.batch import Watched, read_tasks, summary
from parjanya.cli.main import app
from parjanya.limits import DEFAULT_LIMITS
from parjanya.schema import HopMessage, TaskRequest, TaskResult, TaskStatus, utcnow
from parjanya.store import TaskStore

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


class FinishingClient:
    """Stands in for the SDK: records each task on fakeredis and ends it at once on `low`."""

    def __init__(self) -> None:
        self.store = TaskStore(fakeredis.FakeRedis())

    def __enter__(self) -> FinishingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def submit_many(self, requests: list[TaskRequest]) -> list[SimpleNamespace]:
        handles = []
        for request in requests:
            task_id = self.store.create(request, requeue_after_s=60).task_id
            claim = self.store.claim(
                HopMessage(task_id=task_id, hop=0, stage="intake"),
                holding=TaskStatus.classifying,
                lease_ttl_s=30,
                max_deliveries=4,
            )
            doc = self.store.get(task_id)
            assert doc is not None
            doc.status, doc.tier_path, doc.cost_usd = TaskStatus.succeeded, ["low"], 0.001
            doc.finished_at = doc.created_at + timedelta(seconds=0.5)
            self.store.transition(doc, token=claim.token, hop=0, stage="intake", ttl_s=60)
            handles.append(SimpleNamespace(id=task_id))
        return handles


@pytest.mark.parametrize("as_json", [True, False])
def test_a_good_file_is_submitted_watched_and_summed_up(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    as_json: bool,
) -> None:
    monkeypatch.setattr(batch, "Client", FinishingClient)
    path = write(tmp_path, GOOD, json.dumps({"prompt": "Say bye.", "max_tier": "low"}))
    console = Console(width=150, force_terminal=False)

    code = batch.run_file(path, as_json=as_json, timeout_s=5, console=console)

    assert code == 0
    out = capsys.readouterr().out
    if as_json:
        report = json.loads(out)
        assert report["submitted"] == 2 and [t["line"] for t in report["tasks"]] == [1, 2]
        assert report["summary"]["by_tier"]["low"]["tasks"] == 2
        assert report["summary"]["total"]["cost_usd"] == pytest.approx(0.002)
    else:
        assert "batch summary" in out and "total" in out and "0.002000" in out
