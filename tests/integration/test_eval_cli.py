"""`parjanya eval` as a new user runs it: no arguments, the shipped data, a real process."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_eval_with_no_arguments_prints_the_table_and_a_closing_line_per_scorer() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "parjanya", "eval"],
        capture_output=True,
        text=True,
        timeout=240,
        env={"COLUMNS": "120", "PATH": ""},
    )
    assert done.returncode == 0, done.stderr
    closing = [line for line in done.stdout.splitlines() if line.startswith("eval scorer=")]
    assert len(closing) == 6
    default = dict(part.split("=", 1) for part in closing[0].split()[1:])
    assert default["scorer"] == "default" and default["data"] == "mmlu-outcomes-train"
    assert 0.5 < float(default["auroc"]) < 1.0
    oracle = dict(part.split("=", 1) for part in closing[-1].split()[1:])
    assert float(oracle["auroc"]) == 1.0
    assert "7658 prompts" in done.stdout and "refitted in folds grouped by source" in done.stdout
