"""`parjanya eval [FILE...]`: how well each scorer routes, on outcome data (`learn/evaluate.py`).

Each file is evaluated on its own (a source is a kind of data; pooling them would let one set's
easy separation hide another's), with the default scorer, the hand-set heuristic, every learned
model given, and the reference scorers (length, random, oracle). `--calibrate` prints the
thresholds that reach `--target-quality` at the lowest cost for the default scorer and writes them
with `--write-config`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from parjanya.config import ParjanyaConfig, get_config

if TYPE_CHECKING:  # numpy and scikit-learn load only when the command runs (not for `worker`)
    from parjanya.learn.calibrate import Calibration
    from parjanya.learn.confidence_eval import CheckerReport
    from parjanya.learn.evaluate import NamedScorer, ScorerReport

__all__ = ["evaluate_command"]


def _scorers(config: ParjanyaConfig, models: list[Path]) -> list[NamedScorer]:
    from parjanya.classify.learned import load_model
    from parjanya.classify.scorer import (
        bundled_model,
        bundled_points,
        configured_dimensions,
        fitted_dimensions,
    )
    from parjanya.learn.evaluate import (
        NamedScorer,
        heuristic_scorer,
        learned_scorer,
        reference_scorers,
    )

    routing = config.routing
    default_model = load_model(routing.scorer_model) if routing.scorer_model else bundled_model()
    heuristic = heuristic_scorer(config, configured_dimensions(routing))
    default = heuristic if routing.scorer == "heuristic" else learned_scorer(default_model)
    scorers = [NamedScorer("default", default.scores, f"{default.name}{default.note}"), heuristic]
    fitted = bundled_points()
    scorers.append(heuristic_scorer(config, fitted_dimensions(fitted), label="heuristic-fitted"))
    scorers += [learned_scorer(load_model(path)) for path in models]
    return scorers + reference_scorers()


def _table(reports: list[ScorerReport]) -> Table:
    first = reports[0]
    table = Table(title=f"{first.data}: {first.rows} prompts, needs-the-strong-tier")
    table.add_column("scorer", no_wrap=True)
    for column in ("AUROC", "strong share @95%", "cost/1K @95%", "saving @95%"):
        table.add_column(column, justify="right")
    for r in reports:
        table.add_row(
            r.scorer,
            "n/a" if r.auroc != r.auroc else f"{r.auroc:.3f}",
            f"{r.strong_share_at_95:.1%}",
            f"${r.cost_per_1k_at_95:.4f}",
            f"{r.saving_at_95:.1%}",
        )
    table.caption = f"all-strong: ${first.cost_per_1k_all_strong:.4f} per 1K tasks"
    return table


def _write_thresholds(path: Path, result: Calibration) -> None:
    """Rewrite `routing.thresholds` in place when it is the one-line form, else dump the YAML."""
    line = f"thresholds: {{low: {result.low:g}, mid: {result.mid:g}}}"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    updated, count = re.subn(r"(?m)^(\s+)thresholds:\s*\{[^}\n]*\}", rf"\g<1>{line}", text)
    if count != 1:
        import yaml

        document = yaml.safe_load(text) or {}
        document.setdefault("routing", {})["thresholds"] = {"low": result.low, "mid": result.mid}
        updated = yaml.safe_dump(document, sort_keys=False)
    path.write_text(updated, encoding="utf-8")


def evaluate_command(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Outcome JSONL files, each evaluated apart (default: shipped data)."),
    ] = None,
    model: Annotated[
        list[Path] | None, typer.Option("--model", help="A learned model to evaluate too.")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Draw cost-quality curves to a PNG.")] = None,
    calibrate_: Annotated[
        bool, typer.Option("--calibrate", help="Print thresholds for the default scorer.")
    ] = False,
    target_quality: Annotated[float, typer.Option(min=0.5, max=1.0)] = 0.95,
    write_config: Annotated[
        Path | None, typer.Option(help="With --calibrate: write the thresholds into this YAML.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """AUROC, strong share, cost and saving at 95 % of all-strong quality, for every scorer."""
    console = Console()
    from parjanya.classify.scorer import bundled_points
    from parjanya.learn.calibrate import calibrate
    from parjanya.learn.confidence_eval import evaluate_checkers
    from parjanya.learn.evaluate import evaluate
    from parjanya.learn.outcomes import (
        OutcomeFormatError,
        default_data,
        read_outcomes,
        trained_sources,
    )

    config = get_config()
    paths = files or [default_data()]
    try:
        scorers = _scorers(config, model or [])
        results = {p: list(read_outcomes([p])) for p in paths}
    except (OutcomeFormatError, ValueError) as error:
        console.print(f"[red]eval: {error}[/red]")
        raise typer.Exit(2) from error
    all_reports: list[ScorerReport] = []
    checker_reports: list[CheckerReport] = []
    for path, outcomes in results.items():
        if len(outcomes) < 10:
            console.print(f"[red]eval: {path} has {len(outcomes)} outcomes; 10 at least[/red]")
            raise typer.Exit(2)
        reports = evaluate(outcomes, scorers, config, data=path.name.split(".")[0])
        all_reports += reports
        if not as_json:
            console.print(_table(reports))
            console.print(f"default: {scorers[0].note}")
            if trained_sources(bundled_points().trained_on) & {o.source for o in outcomes}:
                console.print("heuristic-fitted: its points were fitted on this data (in-sample)")
        checker_reports += evaluate_checkers(outcomes, config, reports[0].data)
        if checker_reports and config.confidence.checker != "judge" and not as_json:
            console.print("judge checker: not measured (set confidence.checker: judge)")
        if calibrate_:
            default = scorers[0]
            result = calibrate(outcomes, default.scores(outcomes), config, target_quality)
            console.print(
                f"calibrate scorer={default.name} target={target_quality} low={result.low:g} "
                f"mid={result.mid:g} quality={result.quality:.3f} saving={result.saving:.3f} "
                f"({result.method})"
            )
            if write_config is not None:
                _write_thresholds(write_config, result)
                console.print(f"wrote routing.thresholds to {write_config}")
    if plot is not None:
        from parjanya.learn.plot import plot_curves  # matplotlib: the `plot` extra

        plot_curves(all_reports, plot)
        console.print(f"wrote {plot}")
    if as_json:
        rows = [r.model_dump(exclude={"curve"}) for r in all_reports]
        typer.echo(json.dumps(rows, indent=1))
    lines = [r.closing_line() for r in all_reports] + [r.closing_line() for r in checker_reports]
    for line in lines:
        typer.echo(line)
