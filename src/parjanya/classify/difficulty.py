"""Difficulty features: what makes a prompt hard for a small model, measured so it transfers.

Word lists of topics do not transfer between kinds of prompt (a scorer that learns "law" from one
exam knows nothing of math word problems or coding tasks). These features measure the *shape* of
the work instead, each a claim about difficulty that holds across kinds:

- how much there is to read and hold (`stem_words`), and how many quantities must be combined
  (`quantities`, and `quant_load`, their product on a log scale: a long text with no numbers is
  not a calculation, and two numbers in one line are not a multi-step one);
- relations between quantities (twice, half, per, more than): each is one more reasoning step;
- formal material: code vocabulary and code lines, single-letter variables, operators;
- what kind of answer is asked for: a computation or a program (exact, checkable, easy to get
  wrong), a choice among given options, or open-ended prose (which a small model writes well);
- plain or learned wording: the share of long words is high in recall questions full of jargon
  and low in puzzles and procedures, which small models fail more often.

Multiple-choice options are cut off before measuring (`stem`): the options repeat the question's
vocabulary and would make every measure count them twice. One tokenising pass, set lookups, no
per-keyword regex: this runs on every request in the classifier.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["FEATURE_NAMES", "SIGNS", "difficulty_features", "stem"]

_WORD = re.compile(r"[A-Za-z]+|\d+(?:[.,]\d+)?|[%$=+*/^<>|]")
_OPTIONS = re.compile(r"\n\(?[A-D][.)] ")
_CODE_LINE = re.compile(
    r"\n\s*(?:def |class |import |return |for .+:|if .+:|\w+\(.*\)\s*[;{]?$)", re.M
)

_NUMBER_WORDS = frozenset(
    [
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "fifteen",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "hundred",
        "thousand",
        "million",
        "billion",
        "half",
        "twice",
        "double",
        "triple",
        "thrice",
        "quarter",
        "third",
        "thirds",
        "dozen",
        "percent",
        "fifth",
    ]
)
_RELATIONS = frozenset(
    [
        "twice",
        "half",
        "double",
        "doubled",
        "triple",
        "tripled",
        "times",
        "per",
        "each",
        "every",
        "more",
        "less",
        "fewer",
        "than",
        "remaining",
        "rest",
        "left",
        "ratio",
        "proportion",
        "fraction",
        "average",
        "difference",
        "total",
        "altogether",
        "instead",
        "respectively",
        "equivalent",
    ]
)
_CODE_TERMS = frozenset(
    [
        "function",
        "functions",
        "program",
        "programs",
        "code",
        "python",
        "java",
        "javascript",
        "typescript",
        "html",
        "css",
        "sql",
        "query",
        "array",
        "arrays",
        "list",
        "algorithm",
        "implement",
        "implementation",
        "class",
        "method",
        "variable",
        "variables",
        "loop",
        "recursion",
        "recursive",
        "string",
        "strings",
        "integer",
        "integers",
        "compile",
        "compiler",
        "bug",
        "debug",
        "output",
        "input",
        "stack",
        "queue",
        "tree",
        "trees",
        "binary",
        "pointer",
        "return",
        "returns",
        "complexity",
        "runtime",
        "api",
        "regex",
        "script",
        "database",
    ]
)
_CALC_ASKS = frozenset(
    [
        "calculate",
        "compute",
        "find",
        "solve",
        "determine",
        "evaluate",
        "how",
        "many",
        "much",
        "probability",
        "remainder",
        "sum",
        "product",
        "value",
        "express",
        "minimum",
        "maximum",
        "least",
        "greatest",
        "prove",
        "derive",
        "simplify",
        "estimate",
        "implement",
    ]
)
_OPEN_ASKS = frozenset(
    [
        "describe",
        "discuss",
        "explain",
        "write",
        "compose",
        "draft",
        "imagine",
        "story",
        "essay",
        "poem",
        "blog",
        "email",
        "letter",
        "opinion",
        "share",
        "suggest",
        "ideas",
        "tips",
        "creative",
        "persuasive",
        "outline",
        "brainstorm",
        "reflect",
        "summarize",
        "summarise",
        "rewrite",
        "translate",
    ]
)
_CONDITIONALS = frozenset(
    ["if", "unless", "when", "whenever", "whether", "otherwise", "assuming", "suppose"]
)

#: The order of the learned model's inputs; a model file names them and is refused if they differ.
FEATURE_NAMES: tuple[str, ...] = (
    "stem_words",
    "quantities",
    "quant_load",
    "relations",
    "code",
    "variables",
    "operators",
    "calc_asks",
    "open_asks",
    "conditionals",
    "choices",
    "long_words",
    "short_words",
)


#: The direction each feature's principle (module docstring) says difficulty runs: +1 harder when
#: larger, -1 easier. A fitted model may give a feature zero weight, never the opposite sign, so
#: a quirk of one training set cannot teach "more code is easier".
SIGNS: Mapping[str, float] = MappingProxyType(
    {
        "stem_words": 1.0,
        "quantities": 1.0,
        "quant_load": 1.0,
        "relations": 1.0,
        "code": 1.0,
        "variables": 1.0,
        "operators": 1.0,
        "calc_asks": 1.0,
        "open_asks": -1.0,
        "conditionals": 1.0,
        "choices": -1.0,
        "long_words": -1.0,
        "short_words": 1.0,
    }
)


def stem(text: str) -> tuple[str, int]:
    """The question without its lettered options, and how many options there were."""
    match = _OPTIONS.search(text)
    if match is None:
        return text, 0
    return text[: match.start()], len(_OPTIONS.findall(text, match.start()))


def difficulty_features(text: str) -> Mapping[str, float]:
    """The named measures of one prompt, raw (log-scaled where a count can run into thousands)."""
    question, options = stem(text)
    tokens = _WORD.findall(question)
    words = [t.lower() for t in tokens if t[0].isalpha()]
    n_words = max(len(words), 1)
    numbers = sum(1 for t in tokens if t[0].isdigit())
    quantities = numbers + sum(w in _NUMBER_WORDS for w in words) + question.count("%")
    log_words = math.log1p(len(words))
    values = {
        "stem_words": log_words,
        "quantities": math.log1p(quantities),
        "quant_load": math.log1p(quantities) * log_words,
        "relations": math.log1p(sum(w in _RELATIONS for w in words)),
        "code": math.log1p(
            sum(w in _CODE_TERMS for w in words) + len(_CODE_LINE.findall(question))
        ),
        "variables": math.log1p(
            sum(1 for t in tokens if len(t) == 1 and t.isalpha() and t not in "aAI")
        ),
        "operators": math.log1p(sum(1 for t in tokens if t in "=+*/^<>|")),
        "calc_asks": math.log1p(sum(w in _CALC_ASKS for w in words)),
        "open_asks": math.log1p(sum(w in _OPEN_ASKS for w in words)),
        "conditionals": math.log1p(sum(w in _CONDITIONALS for w in words)),
        "choices": float(options > 1),
        "long_words": sum(len(w) >= 9 for w in words) / n_words,
        "short_words": sum(len(w) <= 4 for w in words) / n_words,
    }
    return MappingProxyType(values)
