"""`parjanya confidence --prompt TEXT --answer TEXT [--json]`: the default checker on one answer.

For measuring the checker on public judged answers, which come without logprobs: it prints what a
tier worker would compute for that answer from a vendor that returns none. No broker, no store,
no model call. `--answer -` reads the answer from standard input (answers are long and multi-line).
"""

from __future__ import annotations

import sys
from typing import Annotated, Literal

import typer
from rich.console import Console

from parjanya.confidence import answer_confidence

__all__ = ["confidence"]


def confidence(
    prompt: Annotated[str, typer.Option("--prompt", help="The question the answer replies to.")],
    answer: Annotated[
        str, typer.Option("--answer", help="The answer to score; '-' reads standard input.")
    ],
    response_format: Annotated[
        Literal["text", "json"],
        typer.Option(
            "--response-format", help="With json, an answer that does not parse is penalised."
        ),
    ] = "text",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Print the default confidence checker's value and signals for an answer without logprobs."""
    console = Console()
    text = sys.stdin.read() if answer == "-" else answer
    verdict = answer_confidence(prompt, text, response_format=response_format)
    if as_json:
        typer.echo(verdict.model_dump_json(indent=2))
        return
    console.print(f"confidence: {verdict.value:.3f}", highlight=False)
    for signal in verdict.signals:
        console.print(f"  - {signal}", highlight=False, markup=False)
