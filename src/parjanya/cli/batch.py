"""`parjanya submit --file tasks.jsonl`: many tasks at once, validated first, watched live.

Every line is checked before anything is submitted (a JSON object that is a valid `TaskRequest`
under the configured limits); if any line is bad, each problem is printed with its line and field
and nothing is enqueued. Then every task is submitted, a live progress bar counts them by the tier
they ended on, with escalations and failures, and a table sums cost and latency per tier.
`--json` prints one document instead: every task, and the same summary.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from parjanya import keys
from parjanya.client import Client, as_request
from parjanya.limits import RequestLimits
from parjanya.schema import TaskRequest, TaskResult, TaskStatus

__all__ = ["LineError", "Watched", "read_tasks", "run_file", "summary", "watch"]


@dataclass(frozen=True)
class LineError:
    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", field {self.field}" if self.field else "")
        return f"{where}: {self.message}"


def read_tasks(
    path: Path, limits: RequestLimits
) -> tuple[list[tuple[int, TaskRequest]], list[LineError]]:
    """Every task of a JSONL file with its line number, and every problem; blank lines skipped."""
    tasks: list[tuple[int, TaskRequest]] = []
    errors: list[LineError] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(LineError(number, None, f"not JSON: {exc.msg} (column {exc.colno})"))
                continue
            if not isinstance(data, dict):
                errors.append(LineError(number, None, "a line must be a JSON object (a task)"))
                continue
            try:
                tasks.append((number, as_request(data, limits)))
            except ValidationError as exc:
                for e in exc.errors(include_url=False):
                    field = ".".join(str(p) for p in e["loc"]) or None
                    errors.append(LineError(number, field, e["msg"]))
    if not tasks and not errors:
        errors.append(LineError(0, None, f"{path} holds no tasks"))
    return tasks, errors


@dataclass
class Watched:
    """The batch as it stands: the result of every task that ended so far."""

    ids: list[str]
    results: dict[str, TaskResult]

    @property
    def done(self) -> bool:
        return len(self.results) == len(self.ids)

    def counts(self) -> dict[str, int]:
        ended = list(self.results.values())
        tiers = [r.tier_path[-1] if r.tier_path else "none" for r in ended]
        return {
            **{tier: tiers.count(tier) for tier in ("low", "mid", "high")},
            "escalated": sum(r.escalations > 0 for r in ended),
            "failed": sum(r.status != TaskStatus.succeeded for r in ended),
        }


def _ended(client: Client, ids: Sequence[str]) -> list[TaskResult]:
    """The tasks among `ids` that are terminal now: states in one round trip, then their docs."""
    with client.store.redis.pipeline(transaction=False) as pipe:
        for task_id in ids:
            pipe.hget(keys.task(task_id), "state")
        states = pipe.execute()
    ended = [i for i, s in zip(ids, states, strict=True) if s and TaskStatus(s.decode()).terminal]
    return [r for r in (client.store.get(i) for i in ended) if r is not None]


def watch(
    client: Client,
    ids: list[str],
    *,
    timeout_s: float,
    on_update: Callable[[Watched], None] = lambda _: None,
    poll_s: float = 0.25,
) -> Watched:
    """Poll until every task ended or `timeout_s` passed; `on_update` after every poll."""
    watched = Watched(ids, {})
    deadline = time.monotonic() + timeout_s
    while True:
        pending = [i for i in ids if i not in watched.results]
        for result in _ended(client, pending):
            watched.results[result.id] = result
        on_update(watched)
        if watched.done or time.monotonic() >= deadline:
            return watched
        time.sleep(poll_s)


def _latency_s(result: TaskResult) -> float | None:
    if result.finished_at is None:
        return None
    return (result.finished_at - result.created_at).total_seconds()


def _percentile(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _group(results: list[TaskResult]) -> dict[str, Any]:
    latencies = [x for x in (_latency_s(r) for r in results) if x is not None]
    return {
        "tasks": len(results),
        "succeeded": sum(r.status == TaskStatus.succeeded for r in results),
        "failed": sum(r.status != TaskStatus.succeeded for r in results),
        "escalated": sum(r.escalations > 0 for r in results),
        "cost_usd": round(sum(r.cost_usd for r in results), 8),
        "latency_p50_s": _percentile(latencies, 50),
        "latency_p95_s": _percentile(latencies, 95),
    }


def summary(watched: Watched) -> dict[str, Any]:
    """Per final tier and in total: tasks, outcomes, escalations, cost and latency."""
    ended = list(watched.results.values())
    by_tier = {
        tier: _group([r for r in ended if (r.tier_path[-1] if r.tier_path else "none") == tier])
        for tier in ("low", "mid", "high", "none")
    }
    return {
        "by_tier": {tier: group for tier, group in by_tier.items() if group["tasks"]},
        "total": _group(ended),
        "unfinished": len(watched.ids) - len(ended),
    }


def task_rows(lines: list[int], watched: Watched) -> list[dict[str, Any]]:
    rows = []
    for line, task_id in zip(lines, watched.ids, strict=True):
        result = watched.results.get(task_id)
        rows.append(
            {
                "line": line,
                "id": task_id,
                "status": result.status.value if result else "unfinished",
                "tier_path": list(result.tier_path) if result else [],
                "escalations": result.escalations if result else 0,
                "cost_usd": result.cost_usd if result else 0.0,
                "latency_s": _latency_s(result) if result else None,
                "error": result.error.message if result and result.error else None,
            }
        )
    return rows


def _render(summary_: dict[str, Any], console: Console) -> None:
    table = Table(title="batch summary (by the tier each task ended on)")
    for column in (
        "tier",
        "tasks",
        "succeeded",
        "escalated",
        "failed",
        "cost USD",
        "p50 s",
        "p95 s",
    ):
        table.add_column(column, justify="left" if column == "tier" else "right")

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    groups = [*summary_["by_tier"].items(), ("total", summary_["total"])]
    for name, g in groups:
        table.add_row(
            f"[bold]{name}[/bold]" if name == "total" else name,
            str(g["tasks"]),
            str(g["succeeded"]),
            str(g["escalated"]),
            str(g["failed"]),
            f"{g['cost_usd']:.6f}",
            seconds(g["latency_p50_s"]),
            seconds(g["latency_p95_s"]),
        )
    console.print(table)
    if summary_["unfinished"]:
        console.print(
            f"[yellow]{summary_['unfinished']} tasks had not ended by the timeout[/yellow]"
        )


def _counts_text(watched: Watched) -> str:
    c = watched.counts()
    return (
        f"low {c['low']} · mid {c['mid']} · high {c['high']} · "
        f"escalated {c['escalated']} · failed {c['failed']}"
    )


def run_file(path: Path, *, as_json: bool, timeout_s: float, console: Console) -> int:
    """The whole command: 2 when the file is invalid (nothing submitted), 1 when a task did not
    succeed or end in time, else 0."""
    from parjanya.config import get_config

    tasks, errors = read_tasks(path, get_config().limits)
    if errors:
        if as_json:
            typer.echo(json.dumps({"errors": [asdict(e) for e in errors], "submitted": 0}))
        else:
            for error in errors[:50]:
                console.print(f"[red]{error}[/red]", highlight=False)
            more = f" (first 50 of {len(errors)} shown)" if len(errors) > 50 else ""
            console.print(f"{path}: {len(errors)} problems{more}; nothing was submitted")
        return 2
    with Client() as client:
        ids = [h.id for h in client.submit_many([task for _, task in tasks])]
        if as_json:
            watched = watch(client, ids, timeout_s=timeout_s)
        else:
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
            )
            with Progress(*columns, console=console) as progress:
                bar = progress.add_task(f"{len(ids)} tasks", total=len(ids), counts="")

                def show(now: Watched) -> None:
                    progress.update(bar, completed=len(now.results), counts=_counts_text(now))

                watched = watch(client, ids, timeout_s=timeout_s, on_update=show)
    result = summary(watched)
    if as_json:
        rows = task_rows([line for line, _ in tasks], watched)
        typer.echo(json.dumps({"submitted": len(ids), "tasks": rows, "summary": result}))
    else:
        _render(result, console)
    total = result["total"]
    return 0 if total["failed"] == 0 and result["unfinished"] == 0 else 1
