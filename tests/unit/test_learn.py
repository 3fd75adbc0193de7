"""Routing-quality tooling: outcome readers, metrics and calibration against hand-computed cases."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest

from parjanya.classify.policy import tier_for_score
from parjanya.config import ParjanyaConfig, Thresholds
from parjanya.learn.calibrate import calibrate
from parjanya.learn.metrics import auroc, cost_quality_curve, strong_share_for
from parjanya.learn.outcomes import (
    Outcome,
    OutcomeFormatError,
    default_data,
    parse_outcome,
    read_outcomes,
)


def outcome(weak: float, strong: float, prompt: str = "q", **extra: object) -> Outcome:
    return parse_outcome(
        {
            "prompt": prompt,
            "results": {
                "low": {"quality": weak, "cost_usd": 1.0},
                "high": {"quality": strong, "cost_usd": 10.0},
            },
            **extra,
        }
    )


# -- readers --------------------------------------------------------------------------------------


def test_the_pairwise_shape_becomes_low_and_high_results() -> None:
    row = {
        "prompt": "2+2?",
        "source": "mmlu/x",
        "weak_model": "w",
        "strong_model": "s",
        "weak_correct": False,
        "strong_correct": True,
    }
    parsed = parse_outcome(row)
    assert parsed.source == "mmlu/x" and parsed.needs_strong
    assert parsed.results["low"].quality == 0.0 and parsed.results["low"].model == "w"
    assert parsed.results["high"].quality == 1.0 and parsed.strong_tier == "high"


def test_the_native_shape_takes_bools_scores_costs_and_messages() -> None:
    parsed = parse_outcome(
        {
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hello"},
            ],
            "results": {"mid": {"quality": True}, "high": {"quality": 0.4, "cost_usd": 0.02}},
        }
    )
    assert parsed.text == "be brief\n\nhello"
    assert parsed.weak_tier == "mid" and parsed.weak.quality == 1.0
    assert not parsed.needs_strong  # the stronger tier did worse


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "x", "results": {"low": {"quality": 1}}}, "at least two tiers"),
        ({"prompt": "x", "results": {"low": {"quality": 2}, "high": {"quality": 1}}}, "quality"),
        ({"results": {"low": {"quality": 1}, "high": {"quality": 1}}}, "prompt, messages"),
        ({"prompt": "x", "results": {"top": {"quality": 1}, "high": {"quality": 1}}}, "top"),
        (
            {"prompt": "x", "results": {"low": {"quality": math.nan}, "high": {"quality": 1}}},
            "finite",
        ),
    ],
)
def test_bad_rows_say_what_is_wrong(row: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_outcome(row)


def test_reader_names_file_and_line_and_reads_gzip(tmp_path: Path) -> None:
    good = json.dumps({"prompt": "a", "results": {"low": {"quality": 1}, "high": {"quality": 1}}})
    plain = tmp_path / "o.jsonl"
    plain.write_text(f"{good}\n\n{{not json\n")
    with pytest.raises(OutcomeFormatError, match=r"o\.jsonl:3"):
        list(read_outcomes([plain]))
    packed = tmp_path / "o.jsonl.gz"
    with gzip.open(packed, "wt") as out:
        out.write(good + "\n" + good + "\n")
    assert len(list(read_outcomes([packed]))) == 2


def test_the_shipped_data_reads_as_documented() -> None:
    rows = list(read_outcomes([default_data()]))
    assert len(rows) == 7658
    assert len({r.source for r in rows}) == 29
    weak = sum(r.weak.quality for r in rows) / len(rows)
    strong = sum(r.strong.quality for r in rows) / len(rows)
    needs = sum(r.needs_strong for r in rows) / len(rows)
    assert (round(weak, 3), round(strong, 3)) == (0.703, 0.831)
    assert 0.15 < needs < 0.18


# -- metrics --------------------------------------------------------------------------------------


def test_auroc_counts_correctly_ordered_pairs() -> None:
    # positives 0.9 and 0.3 against negatives 0.8 and 0.1: 3 of 4 pairs in order.
    assert auroc([True, False, True, False], [0.9, 0.8, 0.3, 0.1]) == pytest.approx(0.75)
    assert auroc([True, False], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts half
    assert math.isnan(auroc([True, True], [0.1, 0.2]))


def test_the_curve_and_the_strong_share_at_95_by_hand() -> None:
    # Weak fails prompts 1 and 3; strong gets all four. Scores rank 1, 3, 2, 0.
    curve = cost_quality_curve(
        [0.1, 0.9, 0.2, 0.8], [1, 0, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1], [10, 10, 10, 10]
    )
    assert list(curve.quality) == [0.5, 0.75, 1.0, 1.0, 1.0]
    assert list(curve.cost) == [4, 13, 22, 31, 40]
    share, saving = strong_share_for(curve, 0.95)
    assert share == 0.5 and saving == pytest.approx(1 - 22 / 40)
    # The weak tier alone reaching the target needs no strong calls at all.
    easy = cost_quality_curve([1, 2], [1, 1], [1, 1], [1, 1], [5, 5])
    assert strong_share_for(easy, 0.95) == (0.0, pytest.approx(0.8))


# -- calibration ----------------------------------------------------------------------------------


def test_two_tier_calibration_puts_low_between_the_last_prompt_sent_up_and_the_next() -> None:
    outcomes = [outcome(1, 1), outcome(0, 1), outcome(1, 1), outcome(0, 1)]
    result = calibrate(outcomes, [2.0, 9.0, 3.0, 8.0], ParjanyaConfig(), target=0.95)
    assert result.low == 5.5  # 8 goes up, 3 stays: halfway
    assert result.mid > result.low
    thresholds = Thresholds(low=result.low, mid=result.mid)
    tiers = [tier_for_score(s, thresholds) for s in (2.0, 9.0, 3.0, 8.0)]
    assert tiers[0] == tiers[2] == "low" and "low" not in (tiers[1], tiers[3])
    assert result.quality == 1.0 and result.saving == pytest.approx(1 - 22 / 40)


def test_three_tier_calibration_finds_the_cheapest_cuts_that_keep_the_target() -> None:
    def three(low: float, mid: float) -> Outcome:
        return parse_outcome(
            {
                "prompt": "q",
                "results": {
                    "low": {"quality": low, "cost_usd": 1.0},
                    "mid": {"quality": mid, "cost_usd": 3.0},
                    "high": {"quality": 1.0, "cost_usd": 10.0},
                },
            }
        )

    # Easy prompts (scores 1, 2) need nothing; middling ones (5, 6) need mid; hard (9) need high.
    outcomes = [three(1, 1), three(1, 1), three(0, 1), three(0, 1), three(0, 0)]
    result = calibrate(outcomes, [1.0, 2.0, 5.0, 6.0, 9.0], ParjanyaConfig(), target=1.0)
    thresholds = Thresholds(low=result.low, mid=result.mid)
    routed = [tier_for_score(s, thresholds) for s in (1.0, 2.0, 5.0, 6.0, 9.0)]
    assert routed == ["low", "low", "mid", "mid", "high"]
    assert result.quality == 1.0 and result.saving == pytest.approx(1 - 18 / 50)


def test_checkers_are_measured_when_the_data_carries_answers() -> None:
    from parjanya.learn.confidence_eval import answered, evaluate_checkers

    def row(answer: str, good: bool) -> Outcome:
        return parse_outcome(
            {
                "prompt": "What is 2 + 2?",
                "results": {
                    "low": {"quality": good, "answer": answer},
                    "high": {"quality": True},
                },
            }
        )

    outcomes = [row("4", True), row("I cannot answer that.", False), row("4.", True)]
    assert [good for _, _, good in answered(outcomes)] == [True, False, True]
    (report,) = evaluate_checkers(outcomes, ParjanyaConfig(), data="toy")
    assert report.checker == "default" and report.answers == 3
    assert report.auroc == 1.0  # the refusal is the one wrong answer, and it scores lowest
    assert report.closing_line() == "eval checker=default auroc=1.000 answers=3 data=toy"
    assert evaluate_checkers([outcome(1, 1)], ParjanyaConfig(), data="none") == []
