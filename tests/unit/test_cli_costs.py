"""`parjanya costs`: the since parser and the report's sums."""

from __future__ import annotations

from datetime import date

import pytest
import typer

from parjanya.cli.costs import parse_since, report

TODAY = date(2026, 12, 5)


def _row(tenant: str, tier: str, usd: float, top: float, shadow: float = 0.0) -> dict[str, object]:
    return {
        "tenant": tenant,
        "tier": tier,
        "model": f"m-{tier}",
        "usd": usd,
        "top_usd": top,
        "shadow_usd": shadow,
        "tokens_in": 10.0,
        "tokens_out": 20.0,
        "calls": 2.0,
    }


def test_since_takes_a_date_or_a_number_of_days() -> None:
    assert parse_since(None, TODAY) == date(2026, 11, 6)
    assert parse_since("1d", TODAY) == TODAY
    assert parse_since("7d", TODAY) == date(2026, 11, 29)
    assert parse_since("2026-12-01", TODAY) == date(2026, 12, 1)
    with pytest.raises(typer.BadParameter):
        parse_since("last week", TODAY)


def test_the_report_sums_per_tenant_and_overall_and_prices_the_saving() -> None:
    rows = [
        _row("a", "low", 0.1, 1.0),
        _row("a", "high", 0.4, 0.4),
        _row("b", "mid", 0.2, 0.8, 0.2),
    ]
    data = report(rows, TODAY, None)
    a = data["tenants"]["a"]
    assert a["usd"] == pytest.approx(0.5) and a["all_top_tier_usd"] == pytest.approx(1.4)
    assert a["saving_usd"] == pytest.approx(0.9) and a["saving_share"] == pytest.approx(0.6429)
    assert a["calls"] == 4 and a["tokens_in"] == 20
    assert data["total"]["usd"] == pytest.approx(0.7)
    assert data["tenants"]["b"]["shadow_usd"] == pytest.approx(0.2)
    only_b = report(rows, TODAY, "b")
    assert list(only_b["tenants"]) == ["b"] and len(only_b["rows"]) == 1
    assert report([], TODAY, None)["total"]["saving_share"] == 0.0
