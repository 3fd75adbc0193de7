"""`parjanya outcomes export`: production outcomes as training data for `parjanya train`."""

from __future__ import annotations

import re
import sys
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from parjanya.config import get_config, get_settings
from parjanya.learn.export import ExportCounts, collect, write_outcomes, write_records
from parjanya.store import TaskStore
from parjanya.store.outcomes import OutcomeLog

app = typer.Typer(no_args_is_help=True)

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (UTC when it names no zone) or an age such as `30m`, `12h`, `7d`."""
    age = _AGE.match(value.strip())
    if age:
        seconds = float(age[1]) * _UNIT_S[age[2]]
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"{value!r}: give an ISO time or an age like 12h or 7d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command("export")
def export(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="JSONL file to write (default: stdout).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only outcomes recorded since: an ISO time or 30m, 12h, 7d.")
    ] = None,
    shadow_only: Annotated[
        bool, typer.Option("--shadow-only", help="Only tasks a shadow run labelled (unbiased).")
    ] = False,
    records: Annotated[
        bool,
        typer.Option(
            "--records",
            help="Every answered task's record (tier path, confidence, cost, latency), "
            "not only the labelled rows `parjanya train` reads.",
        ),
    ] = False,
) -> None:
    """Write labelled outcomes in the outcome JSONL format (`parjanya.learn.outcomes`).

    A row is labelled when two tiers answered the same prompt: a shadow run (`routing.shadow_rate`)
    or an escalation for low confidence. Prompts appear only as far as `outcomes.keep_prompt`
    allows; otherwise a row carries the prompt's sha256 and the scorer's difficulty features.
    """
    config = get_config()
    store = TaskStore.from_url(get_settings().store_url)
    log = OutcomeLog(
        store.redis,
        max_records=config.outcomes.max_records,
        retention_s=config.outcomes.retention_s,
    )
    counts = ExportCounts()
    entries = log.read(None if since is None else parse_since(since))
    found = collect(entries, store, config.outcomes, shadow_only=shadow_only, counts=counts)
    target = nullcontext(sys.stdout) if output is None else output.open("w", encoding="utf-8")
    with target as out:
        (write_records if records else write_outcomes)(found, out, counts)
    typer.echo(
        f"outcomes exported={counts.written} shadow={counts.shadow} records={counts.records} "
        f"missing={counts.missing}",
        err=True,
    )
