"""Build the held-out routing outcome files from a checkout of RouteLLM's evaluation responses.

    git clone https://github.com/lm-sys/RouteLLM routellm-src
    python bench/heldout.py --routellm routellm-src --out heldout/
    parjanya eval heldout/gsm8k.jsonl heldout/mmlu-heldout.jsonl heldout/mtbench.jsonl

Why a script and not shipped files: the README's held-out table must be reproducible by anyone,
and the three sets are kinds the shipped training data does not have, so shipping them would
invite training on them. RouteLLM publishes them under the Apache License 2.0 (GSM8K: MIT;
MMLU: MIT; MT-Bench questions and judgements: Apache 2.0, from FastChat).

What it writes (the project's outcome format, `learn/outcomes.py`), decontaminated as RouteLLM's
own `benchmarks.py` does (prompts listed in each `contaminated_prompts.jsonl` are dropped):

- `gsm8k.jsonl`: math word problems; low = Mixtral-8x7B-Instruct correct, high = GPT-4-1106.
- `mmlu-heldout.jsonl`: the MMLU subjects not in the training file (`--train`, by default the
  shipped one), so no subject is both trained and evaluated on.
- `mtbench.jsonl`: first turns; quality is GPT-4's single-answer judgement / 10, so "needs
  strong" means GPT-4-1106's answer was judged better than Mixtral's.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path

WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"
REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "src/parjanya/learn/data/mmlu-outcomes-train.jsonl.gz"


def contaminated(evals: Path, bench: str) -> set[str]:
    path = evals / bench / "contaminated_prompts.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    return {json.loads(line)["eval_prompt"] for line in lines if line.strip()}


def pairwise(prompt: str, source: str, weak: bool, strong: bool) -> dict[str, object]:
    return {
        "prompt": prompt,
        "source": source,
        "results": {
            "low": {"quality": weak, "model": WEAK},
            "high": {"quality": strong, "model": STRONG},
        },
    }


def responses(path: Path) -> Iterator[dict[str, str]]:
    csv.field_size_limit(1 << 30)
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def gsm8k(evals: Path) -> Iterator[dict[str, object]]:
    skip = contaminated(evals, "gsm8k")
    for row in responses(evals / "gsm8k/gsm8k_responses.csv"):
        if row["prompt"] not in skip:
            yield pairwise(row["prompt"], "gsm8k", row[WEAK] == "True", row[STRONG] == "True")


def trained_subjects(train: Path) -> set[str]:
    opener = gzip.open if train.suffix == ".gz" else open
    with opener(train, "rt", encoding="utf-8") as handle:
        return {json.loads(line)["source"].split("/", 1)[1] for line in handle if line.strip()}


def mmlu(evals: Path, train: Path) -> Iterator[dict[str, object]]:
    skip, trained = contaminated(evals, "mmlu"), trained_subjects(train)
    for path in sorted((evals / "mmlu/responses").glob("mmlu_*.csv")):
        subject = path.stem.removeprefix("mmlu_")
        if subject in trained:
            continue
        for row in responses(path):
            if row["prompt"] not in skip:
                yield pairwise(
                    row["prompt"], f"mmlu/{subject}", row[WEAK] == "True", row[STRONG] == "True"
                )


def mtbench(evals: Path) -> Iterator[dict[str, object]]:
    skip = contaminated(evals, "mt_bench")
    questions = [
        json.loads(line)
        for line in (evals / "mt_bench/question.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    scores: dict[tuple[int, str], float] = {}
    for line in (evals / "mt_bench/judgements.jsonl").read_text(encoding="utf-8").splitlines():
        judged = json.loads(line)
        if judged["turn"] == 1:
            scores[(judged["question_id"], judged["model"])] = float(judged["score"])
    for question in sorted(questions, key=lambda q: q["question_id"]):
        first, second = question["turns"][0], question["turns"][1]
        weak, strong = (scores.get((question["question_id"], m)) for m in (WEAK, STRONG))
        if first in skip or second in skip or weak is None or strong is None:
            continue
        yield {
            "prompt": first,
            "source": f"mt_bench/{question['category']}",
            "results": {
                "low": {"quality": weak / 10, "model": WEAK},
                "high": {"quality": strong / 10, "model": STRONG},
            },
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routellm", type=Path, required=True, help="a RouteLLM checkout")
    parser.add_argument("--out", type=Path, default=Path("heldout"))
    parser.add_argument(
        "--train",
        type=Path,
        default=SHIPPED,
        help="training outcomes whose MMLU subjects are left out",
    )
    args = parser.parse_args(argv)
    evals = args.routellm / "routellm/evals"
    if not evals.is_dir():
        parser.error(f"{evals} not found: --routellm must be a RouteLLM checkout")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in (
        ("gsm8k", gsm8k(evals)),
        ("mmlu-heldout", mmlu(evals, args.train)),
        ("mtbench", mtbench(evals)),
    ):
        path = args.out / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            count = sum(handle.write(json.dumps(row) + "\n") > 0 for row in rows)
        print(f"heldout data={name} rows={count} path={path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
