"""`parjanya submit`, `status` and `classify`: producer and inspection commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from parjanya.schema import Sla, TaskRequest, TaskResult


def _request(
    text: str,
    sla: Sla,
    min_tier: str | None,
    max_tier: str | None,
    budget: float | None,
    idempotency_key: str | None,
) -> TaskRequest:
    console = Console()
    fields = {
        "prompt": text,
        "sla": sla,
        "min_tier": min_tier,
        "max_tier": max_tier,
        "budget_usd": budget,
        "idempotency_key": idempotency_key,
    }
    try:
        return TaskRequest.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        console.print(f"[red]invalid request:[/red] {exc}")
        raise typer.Exit(2) from exc


def _print_result(result: TaskResult) -> None:
    console = Console()
    table = Table(show_header=False, box=None)
    rows = {
        "id": result.id,
        "status": result.status.value,
        "tier_path": " -> ".join(result.tier_path) or "-",
        "model": result.model or "-",
        "complexity": f"{result.complexity.score:.2f}" if result.complexity else "-",
        "confidence": f"{result.confidence:.2f}" if result.confidence is not None else "-",
        "low_confidence": str(result.low_confidence),
        "cost_usd": f"{result.cost_usd:.6f}",
        "attempts": str(len(result.attempts)),
        "error": f"{result.error.type}: {result.error.message}" if result.error else "-",
    }
    for key, value in rows.items():
        table.add_row(f"[bold]{key}[/bold]", value)
    console.print(table)
    if result.output:
        console.print(result.output)


def submit(
    text: Annotated[
        str | None, typer.Argument(help="The prompt; '-' reads standard input.")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            exists=True,
            dir_okay=False,
            help="A JSONL file, one task per line: all validated first, then submitted and "
            "watched to the end.",
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the result.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    sla: Annotated[Sla, typer.Option()] = Sla.standard,
    min_tier: Annotated[str | None, typer.Option()] = None,
    max_tier: Annotated[str | None, typer.Option()] = None,
    budget: Annotated[float | None, typer.Option(help="Budget in USD.")] = None,
    idempotency_key: Annotated[str | None, typer.Option()] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait with --wait (with --file: for the batch).")
    ] = 120.0,
) -> None:
    """Submit one task (its id at once, or its result with --wait), or a JSONL file of them."""
    console = Console()
    from parjanya.client import Client, Overloaded

    if (text is None) == (file is None):
        raise typer.BadParameter("give a prompt or --file, not both", param_hint="TEXT / --file")
    if file is not None:
        from parjanya.cli.batch import run_file

        raise typer.Exit(run_file(file, as_json=as_json, timeout_s=timeout, console=console))
    assert text is not None
    prompt = sys.stdin.read() if text == "-" else text
    request = _request(prompt, sla, min_tier, max_tier, budget, idempotency_key)
    with Client() as client:
        try:
            handle = client.submit(request)
        except Overloaded as exc:  # 75: EX_TEMPFAIL, try again later
            console.print(f"[yellow]{exc}[/yellow]")
            raise typer.Exit(75) from exc
        if not wait:
            typer.echo(f'{{"id": "{handle.id}"}}' if as_json else handle.id)
            return
        result = handle.result(timeout=timeout)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        _print_result(result)


def status(
    task_id: Annotated[str, typer.Argument()],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show a task's state and result."""
    console = Console()
    from parjanya.client import Client, TaskNotFound

    with Client() as client:
        try:
            result = client.status(task_id)
        except TaskNotFound:
            console.print(f"[red]no task {task_id}[/red]")
            raise typer.Exit(1) from None
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        _print_result(result)


def classify_text(
    text: Annotated[str, typer.Argument(help="The prompt; '-' reads standard input.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    sla: Annotated[Sla, typer.Option()] = Sla.standard,
    context_tokens: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Score a prompt and show the tier it would go to. No broker needed."""
    console = Console()
    from parjanya.classify import PolicyRejection, classify
    from parjanya.config import get_config

    prompt = sys.stdin.read() if text == "-" else text
    fields = {"prompt": prompt, "sla": sla, "context_tokens": context_tokens}
    request = TaskRequest.model_validate({k: v for k, v in fields.items() if v is not None})
    try:
        decision = classify(request, get_config())
    except PolicyRejection as exc:
        console.print(f"[red]rejected by policy:[/red] {exc}")
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(decision.model_dump_json(indent=2))
        return
    table = Table(title=f"tier: {decision.tier}  (score {decision.complexity.score:.2f})")
    table.add_column("dimension")
    table.add_column("score", justify="right")
    for name, value in decision.complexity.dimensions.model_dump().items():
        table.add_row(name, f"{value:.2f}")
    console.print(table)
    console.print(f"domain: {decision.complexity.domain}   pii: {decision.complexity.pii or '-'}")
    for reason in decision.reasons:
        console.print(f"  - {reason}")
