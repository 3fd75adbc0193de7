"""`parjanya costs`: what each tenant spent, by tier and model, and the saving against the top tier.

Reads the per-day cost ledger the spend middleware writes with every paid call
(`governance/budgets.py`): retries, fallbacks, escalations, shadow runs and consensus answers
included, cache hits not (they cost nothing). The baseline is what the same tokens would have cost
on the top tier's first deployment (the demo's comparison); shadow runs add to the cost but not to
the baseline, since sending everything to the top tier would need none.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from parjanya.client import Client
from parjanya.governance.budgets import SpendLedger, today

_DAYS = re.compile(r"^(\d+)d$")


def parse_since(value: str | None, now: date | None = None) -> date:
    """`YYYY-MM-DD`, or `Nd` for the last N days (today counts as one); default: the last 30."""
    current = now or today()
    if value is None:
        return current - timedelta(days=29)
    days = _DAYS.match(value)
    if days:
        return current - timedelta(days=max(1, int(days.group(1))) - 1)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r}: give YYYY-MM-DD or a number of days like 7d"
        ) from None


def _totals(rows: list[dict[str, Any]]) -> dict[str, float]:
    usd = sum(r["usd"] for r in rows)
    top = sum(r["top_usd"] for r in rows)
    return {
        "usd": round(usd, 10),
        "shadow_usd": round(sum(r["shadow_usd"] for r in rows), 10),
        "calls": sum(int(r["calls"]) for r in rows),
        "tokens_in": sum(int(r["tokens_in"]) for r in rows),
        "tokens_out": sum(int(r["tokens_out"]) for r in rows),
        "all_top_tier_usd": round(top, 10),
        "saving_usd": round(top - usd, 10),
        "saving_share": round(1 - usd / top, 4) if top > 0 else 0.0,
    }


def report(rows: list[dict[str, Any]], since: date, tenant: str | None) -> dict[str, Any]:
    """The report: rows by tenant, tier and model; totals per tenant and overall."""
    chosen = [r for r in rows if tenant is None or r["tenant"] == tenant]
    tenants = sorted({r["tenant"] for r in chosen})
    return {
        "since": since.isoformat(),
        "rows": [
            {
                **r,
                "calls": int(r["calls"]),
                "tokens_in": int(r["tokens_in"]),
                "tokens_out": int(r["tokens_out"]),
            }
            for r in chosen
        ],
        "tenants": {t: _totals([r for r in chosen if r["tenant"] == t]) for t in tenants},
        "total": _totals(chosen),
    }


def costs(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant ('-' is anonymous).")] = None,
    since: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD or Nd (the last N days); default 30d.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Cost per tenant, tier and model, and the saving against sending every task to the top tier."""
    console = Console()
    start = parse_since(since)
    with Client() as client:
        ledger = SpendLedger(client.config.governance.budgets, sync=client.store.redis)
        data = report(ledger.rows(start), start, tenant)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table(title=f"costs since {data['since']} (USD)")
    for column in ("tenant", "tier", "model", "calls", "tokens in", "tokens out", "cost"):
        table.add_column(column)
    for r in data["rows"]:
        table.add_row(
            r["tenant"],
            r["tier"],
            r["model"],
            str(r["calls"]),
            str(r["tokens_in"]),
            str(r["tokens_out"]),
            f"{r['usd']:.6f}",
        )
    console.print(table)
    for name, t in data["tenants"].items():
        console.print(
            f"{name}: ${t['usd']:.6f} (shadow ${t['shadow_usd']:.6f}) vs ${t['all_top_tier_usd']:.6f} "
            f"all on the top tier: {t['saving_share']:.0%} saved"
        )
    total = data["total"]
    console.print(
        f"total: ${total['usd']:.6f} vs ${total['all_top_tier_usd']:.6f}: "
        f"{total['saving_share']:.0%} saved"
    )
