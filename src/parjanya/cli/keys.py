"""`parjanya keys create|list|revoke|secret`: API keys (stored hashed) and the tenants they map to."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from parjanya.connect import async_redis_client
from parjanya.store.apikeys import ApiKeyStore

app = typer.Typer(no_args_is_help=True)
T = TypeVar("T")


def _run(work: Callable[[ApiKeyStore], Awaitable[T]]) -> T:
    from parjanya.config import get_settings

    async def go() -> T:
        client = async_redis_client(get_settings().store_url, socket_timeout=None)
        try:
            return await work(ApiKeyStore(client))
        finally:
            await client.aclose()

    return asyncio.run(go())


@app.command("create")
def create(
    tenant: Annotated[str, typer.Option(help="The tenant the key acts for.")],
    rate: Annotated[
        int | None,
        typer.Option(min=1, help="Requests per minute (default: api.key_rate_per_minute)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Make a key for TENANT; it is shown once, here (the store keeps only its SHA-256)."""
    console = Console()
    if not tenant.strip() or len(tenant) > 128:
        raise typer.BadParameter("a tenant is 1 to 128 characters", param_hint="--tenant")
    made = _run(lambda store: store.create(tenant, rate_per_minute=rate))
    if as_json:
        record = {"id": made.record.id, "tenant": tenant, "rate_per_minute": rate}
        typer.echo(json.dumps({**record, "key": made.key, "webhook_secret": made.webhook_secret}))
        return
    console.print(f"key {made.record.id} for tenant [bold]{tenant}[/bold] (shown only now):")
    typer.echo(made.key)
    console.print(f"webhook signing secret of {tenant}: {made.webhook_secret}")


@app.command("list")
def list_keys(
    tenant: Annotated[str | None, typer.Option()] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every key's id, tenant and rate (never the key)."""
    console = Console()
    records = _run(lambda store: store.list(tenant))
    if as_json:
        typer.echo(json.dumps([r.__dict__ for r in records]))
        return
    table = Table(title=f"API keys ({len(records)})")
    for column in ("id", "tenant", "rate/min", "created"):
        table.add_column(column)
    for r in records:
        created = datetime.fromtimestamp(r.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(r.id, r.tenant, str(r.rate_per_minute or "default"), created)
    console.print(table)


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (parjanya keys list).")],
) -> None:
    """Delete a key; API processes refuse it within api.key_cache_s."""
    console = Console()
    revoked = _run(lambda store: store.revoke(key_id))
    if revoked is None:
        console.print(f"[red]no key {key_id}[/red]")
        raise typer.Exit(1)
    console.print(f"revoked key {key_id} of tenant {revoked.tenant}")


@app.command("secret")
def secret(tenant: Annotated[str, typer.Option()]) -> None:
    """The tenant's webhook signing secret (what its receivers verify signatures with)."""
    typer.echo(_run(lambda store: store.webhook_secret(tenant)))
