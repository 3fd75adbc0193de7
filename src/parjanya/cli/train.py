"""`parjanya train FILE... -o MODEL`: fit a learned scorer to routing outcomes (`learn/fit.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

__all__ = ["train"]


#: Written into a model fitted to the shipped data: whatever is derived from it names its sources.
SHIPPED_NOTICE = (
    "Fitted to routing outcomes derived from RouteLLM's MMLU evaluation responses "
    "(lm-sys/RouteLLM, Apache License 2.0) on MMLU questions (Hendrycks et al., MIT License); "
    "see parjanya/learn/data/README.md and LICENSES.md."
)


def _write(path: Path, text: str) -> None:
    path.write_text(text + "\n", encoding="utf-8")


def train(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Outcome JSONL files (default: the shipped MMLU outcomes)."),
    ] = None,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Where to write the model.")
    ] = Path("scorer.json"),
    name: Annotated[str, typer.Option(help="Recorded with every routing decision.")] = "learned-v1",
    ngrams: Annotated[
        bool, typer.Option(help="Add hashed word n-grams (for a deployment's own outcomes).")
    ] = False,
    alpha: Annotated[float, typer.Option(min=0.0, help="Ridge penalty.")] = 1.0,
    heuristic: Annotated[
        bool,
        typer.Option(help="Fit the heuristic's term points instead (routing.heuristic_points)."),
    ] = False,
) -> None:
    """Fit a scorer; load it with `routing.scorer: learned` and `routing.scorer_model: PATH`."""
    # scikit-learn, scipy and numpy load here, when the command runs: every `parjanya` command
    # (a worker too) imports this module to register it.
    console = Console()
    from parjanya.learn.fit import TrainOptions, fit_model
    from parjanya.learn.heuristic import fit_points
    from parjanya.learn.outcomes import (
        OutcomeFormatError,
        default_data,
        read_outcomes,
        trained_sources,
    )

    paths = files or [default_data()]
    try:
        outcomes = list(read_outcomes(paths))
        if heuristic:
            notice = SHIPPED_NOTICE if default_data() in paths else ""
            points = fit_points(outcomes, name=name).model_copy(update={"notice": notice})
            _write(output, points.model_dump_json(indent=1))
            console.print(f"wrote {output}: fitted heuristic points from {len(outcomes)} outcomes")
            return
        model = fit_model(
            outcomes,
            TrainOptions(name=name, alpha=alpha, ngrams=ngrams),
            describe=lambda _: {"files": [p.name for p in paths]},
            notice=SHIPPED_NOTICE if default_data() in paths else "",
        )
    except (OutcomeFormatError, ValueError) as error:
        console.print(f"[red]train: {error}[/red]")
        raise typer.Exit(2) from error
    _write(output, model.model_dump_json(indent=1))
    size_kb = output.stat().st_size / 1024
    console.print(
        f"wrote {output} ({size_kb:.0f} KB): {model.name}, {len(outcomes)} outcomes from "
        f"{len(trained_sources(model.trained_on))} sources"
    )
    weights = ", ".join(
        f"{n}={c:.3f}" for n, c in zip(model.features, model.coef, strict=True) if c > 0
    )
    console.print(f"weights (standardised, signed by principle): {weights}")
