"""The demo workload of `parjanya up`: a 60/30/10 mix of agent tasks, and what happened to it."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from parjanya.client import Client
from parjanya.config import get_config
from parjanya.runtime.workload import demo_workload
from parjanya.schema import TaskResult, TaskStatus


def _all_high_cost(result: TaskResult) -> float:
    """What the same tokens would have cost on the high tier's first deployment."""
    high = get_config().tiers["high"].deployments[0]
    return high.cost_usd(result.tokens_in, result.tokens_out)


def run_demo(count: int, timeout_s: float = 120.0, console: Console | None = None) -> int:
    console = console or Console()
    workload = demo_workload(count)
    console.print(
        f"demo: submitting {len(workload)} tasks (60% routine / 30% architectural / "
        "10% research) to the simulated provider..."
    )
    with Client() as client:
        # Past the response cache: a second `parjanya up` on the same Redis would otherwise answer
        # every task from it, at no cost, and there would be no routing saving to show.
        handles = [
            (category, client.submit(request.model_copy(update={"cache": False})))
            for category, request in workload
        ]
        done = [(category, handle.result(timeout=timeout_s)) for category, handle in handles]
    table = Table(title="demo results")
    for column in ("category", "tasks", "first tier", "escalated", "succeeded", "cost USD"):
        table.add_column(column)
    for category in ("routine", "architectural", "research"):
        rows = [r for c, r in done if c == category]
        if not rows:
            continue
        first = Counter(r.tier_path[0] for r in rows if r.tier_path)
        table.add_row(
            category,
            str(len(rows)),
            ", ".join(f"{t}:{n}" for t, n in sorted(first.items())),
            str(sum(r.escalations > 0 for r in rows)),
            str(sum(r.status == TaskStatus.succeeded for r in rows)),
            f"{sum(r.cost_usd for r in rows):.6f}",
        )
    console.print(table)
    spent = sum(r.cost_usd for _, r in done)
    baseline = sum(_all_high_cost(r) for _, r in done)
    if baseline > 0:
        console.print(
            f"cost {spent:.6f} USD vs {baseline:.6f} USD had every task gone to the high "
            f"tier ({100 * (1 - spent / baseline):.0f}% less; simulated prices)"
        )
    failed = [r for _, r in done if r.status != TaskStatus.succeeded]
    for result in failed:
        console.print(f"[yellow]{result.id}: {result.status.value} {result.error}[/yellow]")
    return 0 if not failed else 1
