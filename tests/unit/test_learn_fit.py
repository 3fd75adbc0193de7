"""Learned scorers: fitting is deterministic and sign-constrained, files load safely, and the CLI
never scores a prompt with a model that saw its source."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from parjanya.classify import build_scorer, classify
from parjanya.classify.difficulty import FEATURE_NAMES, SIGNS, difficulty_features, stem
from parjanya.classify.learned import LearnedScorer, load_model
from parjanya.classify.scorer import bundled_model
from parjanya.cli.main import app
from parjanya.config import ParjanyaConfig, RoutingConfig
from parjanya.learn.evaluate import learned_scorer
from parjanya.learn.fit import TrainOptions, cross_validated, fit_model
from parjanya.learn.outcomes import Outcome, parse_outcome
from parjanya.schema import TaskRequest


def synthetic(n: int = 120, seed: int = 3) -> list[Outcome]:
    """Word problems whose low-tier failure rises with the number of quantities, in 4 sources."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        quantities = rng.randint(0, 6)
        facts = " ".join(f"Box {k} holds {rng.randint(2, 90)} apples." for k in range(quantities))
        prompt = f"{facts} Describe the boxes." if quantities < 2 else f"{facts} How many in total?"
        fails = rng.random() < 0.1 + 0.13 * quantities
        rows.append(
            parse_outcome(
                {
                    "prompt": prompt,
                    "source": f"set{i % 4}",
                    "results": {"low": {"quality": not fails}, "high": {"quality": True}},
                }
            )
        )
    return rows


def test_fitting_is_deterministic_and_respects_the_stated_signs() -> None:
    rows = synthetic()
    first, second = fit_model(rows), fit_model(rows)
    assert first.model_dump_json() == second.model_dump_json()
    assert all(c >= 0 for c in first.coef)  # signs live in `signs`, never in the coefficients
    assert first.signs == tuple(SIGNS[n] for n in FEATURE_NAMES)
    assert first.trained_on["rows"] == 120 and first.trained_on["sources"] == [
        "set0",
        "set1",
        "set2",
        "set3",
    ]
    scorer = LearnedScorer(first)
    easy, hard = rows[0].text, max(rows, key=lambda o: o.text.count("apples")).text
    assert scorer.probability(hard) > scorer.probability("Describe the boxes.")
    assert 1.0 <= scorer.score(easy) <= 10.0


def test_out_of_fold_scores_come_from_models_that_did_not_see_the_source() -> None:
    rows = synthetic()
    in_sample = LearnedScorer(fit_model(rows))
    folds = cross_validated(rows, TrainOptions())
    assert len(folds) == len(rows)
    assert any(
        abs(f - in_sample.probability(o.text)) > 1e-9 for f, o in zip(folds, rows, strict=True)
    )


def test_eval_refits_in_folds_when_the_data_shares_the_models_sources() -> None:
    rows = synthetic()
    model = fit_model(rows)
    scores = learned_scorer(model).scores(rows)
    in_sample = [LearnedScorer(model).score(o.text) for o in rows]
    assert list(scores) != in_sample


def test_model_files_are_validated_on_load(tmp_path: Path) -> None:
    good = json.loads(bundled_model().model_dump_json())
    path = tmp_path / "m.json"
    path.write_text(json.dumps({**good, "features": ["stem_words"]}))
    with pytest.raises(ValueError, match="retrain it"):
        load_model(path)
    path.write_text(json.dumps({**good, "knots": [[0, 1], [0, 2]]}))
    with pytest.raises(ValueError, match="strictly increasing"):
        load_model(path)
    path.write_text("{")
    with pytest.raises(ValueError, match=r"m\.json"):
        load_model(path)


def test_the_bundled_model_names_its_sources_and_licences() -> None:
    model = bundled_model()
    assert model.name == "difficulty-mmlu-v1" and model.trained_on["rows"] == 7658
    assert "Apache" in model.notice and "MIT" in model.notice
    assert model.ngrams is None  # topic words do not transfer between kinds of prompt


def test_multiple_choice_options_are_cut_before_measuring() -> None:
    question = "Which is prime?\nA. 4\nB. 6\nC. 7\nD. 9\nAnswer:"
    assert stem(question) == ("Which is prime?", 4)
    assert difficulty_features(question)["quantities"] == 0.0
    assert difficulty_features(question)["choices"] == 1.0


def test_train_writes_a_model_that_routing_loads(tmp_path: Path) -> None:
    data = tmp_path / "outcomes.jsonl"
    data.write_text("\n".join(r.model_dump_json() for r in synthetic()) + "\n")
    model_path = tmp_path / "model.json"
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(data), "-o", str(model_path), "--name", "mine"])
    assert result.exit_code == 0, result.output
    assert model_path.stat().st_size < 20 * 1024 * 1024
    routing = RoutingConfig(scorer="learned", scorer_model=model_path)
    decision = classify(TaskRequest(prompt="How many apples?"), ParjanyaConfig(routing=routing))
    assert decision.complexity.scorer == "mine"
    assert build_scorer(routing).name == "mine"
    with_ngrams = tmp_path / "ngrams.json"
    result = runner.invoke(app, ["train", str(data), "-o", str(with_ngrams), "--ngrams"])
    assert result.exit_code == 0, result.output
    assert load_model(with_ngrams).ngrams is not None


def test_eval_prints_a_closing_line_per_scorer_and_calibrates_into_a_config(
    tmp_path: Path,
) -> None:
    data = tmp_path / "outcomes.jsonl"
    data.write_text("\n".join(r.model_dump_json() for r in synthetic()) + "\n")
    config = tmp_path / "parjanya.yaml"
    config.write_text("routing:\n  thresholds: {low: 3.5, mid: 6.5}\n  max_escalations: 1\n")
    result = CliRunner().invoke(
        app, ["eval", str(data), "--calibrate", "--write-config", str(config)]
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("eval scorer=")]
    names = [line.split()[1] for line in lines]
    assert names == [
        "scorer=default",
        "scorer=heuristic:features-v1",
        "scorer=heuristic-fitted:features-v2",
        "scorer=length",
        "scorer=random",
        "scorer=oracle",
    ]
    oracle = lines[-1]
    assert "auroc=1.000" in oracle and "data=outcomes" in oracle
    assert "calibrate scorer=default" in result.output
    written = config.read_text()
    assert "thresholds: {low: 3.5, mid: 6.5}" not in written and "max_escalations: 1" in written


def test_eval_refits_with_the_models_own_recipe() -> None:
    from parjanya.learn.fit import options_of

    model = fit_model(synthetic(), TrainOptions(name="m", alpha=3.0, ngrams=True))
    assert options_of(model) == TrainOptions(name="m", alpha=3.0, ngrams=True)
    assert options_of(bundled_model()) == TrainOptions(name="difficulty-mmlu-v1")
