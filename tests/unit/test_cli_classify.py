"""`parjanya classify` works with no broker at all."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from parjanya.cli.main import app

runner = CliRunner()


def test_classify_json_prints_the_breakdown_and_tier() -> None:
    result = runner.invoke(
        app,
        ["classify", "Rename tmp to total in cart.py", "--json"],
        env={"PARJANYA_BROKER_URL": "redis://127.0.0.1:1/0"},
    )
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert decision["tier"] == "low"
    assert set(decision["complexity"]["dimensions"]) == {
        "structural",
        "cognitive",
        "context",
        "ambiguity",
        "risk",
    }
    assert 1 <= decision["complexity"]["score"] <= 10


def test_classify_table_output_and_critical_sla() -> None:
    result = runner.invoke(app, ["classify", "Rename tmp to total", "--sla", "critical"])
    assert result.exit_code == 0, result.output
    assert "tier: mid" in result.output


def test_worker_needs_exactly_one_queue() -> None:
    result = runner.invoke(app, ["worker"])
    assert result.exit_code != 0
    result = runner.invoke(app, ["worker", "--tier", "huge"])
    assert result.exit_code != 0 and "low, mid, high" in result.output
