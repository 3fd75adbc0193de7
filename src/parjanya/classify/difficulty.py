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

_OPERATORS = frozenset("=+*/^<>|")
#: The word lists in the order `difficulty_features` unpacks their counts.
_LISTS = (_NUMBER_WORDS, _RELATIONS, _CODE_TERMS, _CALC_ASKS, _OPEN_ASKS, _CONDITIONALS)
#: Each listed word and the lists it is in: one lookup per word instead of one per list.
_WORD_TAGS: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {
        word: tuple(i for i, words in enumerate(_LISTS) if word in words)
        for word in frozenset().union(*_LISTS)
    }
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
    """The named measures of one prompt, raw (log-scaled where a count can run into thousands).

    One pass over the tokens with one table lookup per word: this runs on every request.
    """
    question, options = stem(text)
    hits = [0] * len(_LISTS)
    numbers = variables = operators = words = long_words = short_words = 0
    table = _WORD_TAGS
    for token in _WORD.findall(question):
        first = token[0]
        if first.isdigit():
            numbers += 1
        elif not first.isalpha():
            operators += token in _OPERATORS
        else:
            words += 1
            size = len(token)
            long_words += size >= 9
            short_words += size <= 4
            variables += size == 1 and token not in "aAI"
            for tag in table.get(token.lower(), ()):
                hits[tag] += 1
    number_words, relations, code, calc, open_asks, conditionals = hits
    quantities = math.log1p(numbers + number_words + question.count("%"))
    log_words = math.log1p(words)
    code_lines = len(_CODE_LINE.findall(question)) if "\n" in question else 0
    per_word = 1 / max(words, 1)
    return MappingProxyType(
        {
            "stem_words": log_words,
            "quantities": quantities,
            "quant_load": quantities * log_words,
            "relations": math.log1p(relations),
            "code": math.log1p(code + code_lines),
            "variables": math.log1p(variables),
            "operators": math.log1p(operators),
            "calc_asks": math.log1p(calc),
            "open_asks": math.log1p(open_asks),
            "conditionals": math.log1p(conditionals),
            "choices": float(options > 1),
            "long_words": long_words * per_word,
            "short_words": short_words * per_word,
        }
    )
