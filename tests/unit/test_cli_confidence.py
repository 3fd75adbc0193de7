"""`parjanya confidence` scores one answer offline: no broker, no store, no model call."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from parjanya.cli.main import app
from parjanya.confidence import Confidence, answer_confidence

runner = CliRunner()
NO_BROKER = {"PARJANYA_BROKER_URL": "redis://127.0.0.1:1/0"}


def test_json_is_the_checker_verdict_as_a_model_dump() -> None:
    args = ["confidence", "--prompt", "Capital of France?", "--answer", "Perhaps Paris.", "--json"]
    result = runner.invoke(app, args, env=NO_BROKER)
    assert result.exit_code == 0, result.output
    verdict = Confidence.model_validate(json.loads(result.output))
    assert verdict == answer_confidence("Capital of France?", "Perhaps Paris.")
    assert verdict.value < 0.9 and verdict.signals[-1].startswith("hedging")


def test_text_output_lists_value_and_signals() -> None:
    result = runner.invoke(app, ["confidence", "--prompt", "q", "--answer", "I don't know."])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "confidence: 0.450"
    assert lines[1:] == ["  - logprobs: none, prior 0.9", '  - uncertain: "I don\'t know" (x0.5)']


def test_json_response_format_and_answer_from_stdin() -> None:
    args = ["confidence", "--prompt", "Give JSON", "--answer", "-", "--json"]
    broken = runner.invoke(app, [*args, "--response-format", "json"], input='{"a": 1\n')
    assert broken.exit_code == 0, broken.output
    assert json.loads(broken.output)["value"] <= 0.1
    as_text = runner.invoke(app, args, input='{"a": 1\n')
    assert json.loads(as_text.output)["value"] == 0.9
    wrong = runner.invoke(app, [*args, "--response-format", "xml"], input="x")
    assert wrong.exit_code != 0
