"""`parjanya outcomes export --since`: the one piece of the command with logic of its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import typer

from parjanya.cli.outcomes import parse_since

NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("12h", NOW - timedelta(hours=12)),
        ("1.5d", NOW - timedelta(hours=36)),
        ("45s", NOW - timedelta(seconds=45)),
        ("2026-12-01T10:00:00", datetime(2026, 12, 1, 10, tzinfo=UTC)),  # no zone: UTC
        ("2026-12-01T10:00:00+02:00", datetime(2026, 12, 1, 8, tzinfo=UTC)),
    ],
)
def test_since_takes_an_age_or_an_iso_time(given: str, expected: datetime) -> None:
    assert parse_since(given, NOW) == expected


def test_since_refuses_anything_else() -> None:
    with pytest.raises(typer.BadParameter, match="12h"):
        parse_since("yesterday", NOW)
