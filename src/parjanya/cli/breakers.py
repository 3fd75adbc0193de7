"""`parjanya breakers [--json] [--reset NAME]`: every configured deployment's shared circuit breaker."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import redis.asyncio as aioredis
import typer
from rich.console import Console
from rich.table import Table

from parjanya.config import ParjanyaConfig, get_config, get_settings
from parjanya.connect import async_redis_client
from parjanya.resilience.breaker import force_close
from parjanya.resilience.breaker_state import Snapshot
from parjanya.resilience.breaker_store import BreakerStore, RedisBreakerStore

__all__ = ["breaker_rows", "breakers"]


def _connect(url: str) -> aioredis.Redis:
    return async_redis_client(url, socket_timeout=5)


def _row(tier: str, name: str, snap: Snapshot, reset_after_s: float) -> dict[str, Any]:
    record = snap.record
    held = record.state == "half_open" and bool(record.probe_id) and snap.now < record.probe_until
    due = None
    if record.state == "open" and record.opened_at is not None:
        due = max(0.0, record.opened_at + reset_after_s - snap.now)
    return {
        "deployment": name,
        "tier": tier,
        "state": record.state,
        "consecutive_failures": record.failures,
        "opened_at": _iso(record.opened_at),
        "half_open_in_s": None if due is None else round(due, 1),
        "probe_held": held,
        "probe_lease_left_s": round(record.probe_until - snap.now, 1) if held else None,
    }


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


async def breaker_rows(store: BreakerStore, config: ParjanyaConfig) -> list[dict[str, Any]]:
    """One row per configured deployment, in tier and config order."""
    rows = []
    for tier, tier_config in config.tiers.items():
        for deployment in tier_config.deployments:
            snap = await store.load(deployment.name)
            rows.append(_row(tier, deployment.name, snap, config.breaker.reset_after_s))
    return rows


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="circuit breakers")
    for column in ("tier", "deployment", "state", "consecutive failures", "opened at", "probe"):
        table.add_column(column)
    colour = {"closed": "green", "open": "red", "half_open": "yellow"}
    for row in rows:
        state = f"[{colour[row['state']]}]{row['state']}[/]"
        if row["half_open_in_s"] is not None:
            state += f" (probe in {row['half_open_in_s']:g}s)"
        probe = f"held, {row['probe_lease_left_s']:g}s left" if row["probe_held"] else "-"
        table.add_row(
            row["tier"],
            row["deployment"],
            state,
            str(row["consecutive_failures"]),
            row["opened_at"] or "-",
            probe,
        )
    return table


async def _run(url: str, config: ParjanyaConfig, as_json: bool, reset: str | None) -> int:
    console = Console()
    client = _connect(url)
    try:
        store = RedisBreakerStore(client)
        if reset is not None:
            before = await force_close(store, reset)
            console.print(f"breaker of {reset} closed (was {before.record.state})")
            return 0
        rows = await breaker_rows(store, config)
    finally:
        await client.aclose()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        console.print(_table(rows))
    return 0


def breakers(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    reset: Annotated[
        str | None,
        typer.Option("--reset", metavar="NAME", help="Force-close this deployment's breaker."),
    ] = None,
) -> None:
    """Show every configured deployment's shared circuit breaker, or force-close one."""
    console = Console()
    config = get_config()
    names = {d.name for tier in config.tiers.values() for d in tier.deployments}
    if reset is not None and reset not in names:
        console.print(f"[red]no deployment {reset!r} in the config[/red]")
        raise typer.Exit(1)
    raise typer.Exit(asyncio.run(_run(get_settings().store_url, config, as_json, reset)))
