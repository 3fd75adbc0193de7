"""`parjanya dlq list|show|replay|purge`: the dead-letter store, for ops."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from parjanya.broker import amqp
from parjanya.client import Client
from parjanya.governance.privacy import conceal
from parjanya.schema import DeadLetter
from parjanya.store import DeadLetterStore
from parjanya.worker.deadletter import replay as replay_task

app = typer.Typer(no_args_is_help=True)


def _shown(entry: DeadLetter, client: Client) -> DeadLetter:
    """An unreadable message's bytes may hold prompt text: shown only when config allows it."""
    allowed = client.config.governance.privacy.log_prompts
    return entry.model_copy(update={"raw": conceal(entry.raw, allowed)})


@app.command("list")
def list_dead(
    limit: Annotated[int, typer.Option()] = 50,
    queue: Annotated[str | None, typer.Option(help="e.g. parjanya.dlq.high")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Dead letters, newest first."""
    console = Console()
    with Client() as client:
        store = DeadLetterStore(client.store.redis)
        entries = [_shown(e, client) for e in store.list(limit=limit, queue=queue)]
        lengths = store.queue_lengths()
    if as_json:
        typer.echo("[" + ",".join(e.model_dump_json() for e in entries) + "]")
        return
    table = Table(title=f"dead letters ({len(entries)} shown)")
    for column in ("id", "queue", "dead at", "reason"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            entry.id, entry.queue, entry.dead_at.strftime("%Y-%m-%d %H:%M:%S"), entry.reason[:80]
        )
    console.print(table)
    console.print("  ".join(f"{q}: {n}" for q, n in lengths.items()))


@app.command("show")
def show(dead_letter_id: str) -> None:
    """One dead letter, with the task's whole history when there is a task behind it."""
    console = Console()
    with Client() as client:
        entry = DeadLetterStore(client.store.redis).get(dead_letter_id)
        entry = None if entry is None else _shown(entry, client)
        task = client.store.get(dead_letter_id)
    if entry is None and task is None:
        console.print(f"[red]no dead letter {dead_letter_id}[/red]")
        raise typer.Exit(1)
    if entry is not None:
        typer.echo(entry.model_dump_json(indent=2))
    if task is not None:
        typer.echo(task.model_dump_json(indent=2))


@app.command("replay")
def replay(
    dead_letter_id: Annotated[str | None, typer.Argument()] = None,
    replay_all: Annotated[bool, typer.Option("--all")] = False,
) -> None:
    """Send dead tasks back through the classifier; their history is kept."""
    console = Console()
    if (dead_letter_id is None) == (not replay_all):
        raise typer.BadParameter("give an ID or --all")
    with Client() as client:
        if replay_all:
            ids = [
                e.id for e in DeadLetterStore(client.store.redis).list(limit=100_000) if e.task_id
            ]
        else:
            ids = [dead_letter_id or ""]
        limits = client.config.reliability
        failures = 0
        for task_id in ids:
            outcome = replay_task(
                client.store,
                client.outbox.publisher,
                task_id,
                max_replays=limits.max_replays,
                requeue_after_s=limits.requeue_after_s,
            )
            failures += not outcome.replayed
            console.print(
                f"{task_id}: {'replayed' if outcome.replayed else 'not replayed'}"
                f" ({outcome.reason})"
            )
    if failures and not replay_all:
        raise typer.Exit(1)


@app.command("purge")
def purge(yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False) -> None:
    """Forget every dead letter (the tasks stay readable as dead_lettered)."""
    console = Console()
    if not yes:
        typer.confirm("Purge every dead letter?", abort=True)
    with Client() as client:
        count = DeadLetterStore(client.store.redis).purge()
        raw = amqp.purge_dead_letter_queues(client.app)  # RabbitMQ's own copies of poison
    console.print(f"purged {count} dead letters")
    if raw:
        console.print(f"and {raw} messages from RabbitMQ's parjanya.dlq.* queues")
