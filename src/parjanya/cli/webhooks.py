"""`parjanya webhooks`: how recent result callbacks ended (delivered, failed, refused) and what is owed."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from parjanya.connect import async_redis_client
from parjanya.webhooks.outbox import Outbox, Record


async def _read(url: str, limit: int) -> tuple[list[Record], int]:
    client = async_redis_client(url, socket_timeout=None)
    try:
        outbox = Outbox(client)
        return await outbox.log(limit), await outbox.owed()
    finally:
        await client.aclose()


def webhooks(
    limit: Annotated[int, typer.Option(min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Finished callback deliveries, newest first, and how many are still owed."""
    console = Console()
    from parjanya.config import get_settings

    records, owed = asyncio.run(_read(get_settings().store_url, limit))
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in records]))
        return
    table = Table(title=f"webhook deliveries ({len(records)} shown, {owed} owed)")
    for column in ("task", "state", "attempts", "answer", "at", "url / error"):
        table.add_column(column)
    for r in records:
        at = datetime.fromtimestamp(r.at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        answer = str(r.status_code or "-")
        table.add_row(r.task_id, r.state, str(r.attempts), answer, at, r.error or r.url)
    console.print(table)
