"""The hidden difficulty of a prompt: the ground truth the sim's models are measured against.

Parjanya's classifier guesses how hard a task is; the sim decides how hard it *is*. The two must be
independent code (this module never imports `parjanya.classify`), or a routing test would only
check that the classifier agrees with itself. The formula below is deliberately simple and only
loosely related to any classifier: size (log of word count), structure (lines), questions,
requirement-like phrases and bullets, a few "hard" words, plus a deterministic jitter of up to
+/-0.1 from the prompt's sha256, so two prompts of the same shape are not exactly equally hard.

Rough landmarks: a one-line factual question is ~0.05, a short coding task with a few "must"s
~0.3, a multi-paragraph design task with bullets and hard words ~0.75.
"""

from __future__ import annotations

import hashlib
import math
import re

from parjanya.sim.markers import parse_markers, strip_markers

JITTER = 0.1

_REQUIREMENT = re.compile(
    r"\b(must|should|shall|ensure|require[sd]?|need(?:s|ed)? to|without|at least|at most|"
    r"make sure|handle|support)\b",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+", re.MULTILINE)
_HARD = re.compile(
    r"\b(prove|proof|derive|optimi[sz]e|architect\w*|concurren\w*|distributed|algorithm\w*|"
    r"trade-?offs?|formal\w*|invariant\w*|race condition\w*|migrat\w*|refactor\w*|"
    r"complexity|theorem|consensus|security|threat model)\b",
    re.IGNORECASE,
)


def _saturate(value: float, full: float) -> float:
    return min(1.0, value / full)


def jitter(text: str) -> float:
    """A fixed offset in [-JITTER, +JITTER) from the text's sha256."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    unit = int.from_bytes(digest[:8], "big") / 2**64
    return (2.0 * unit - 1.0) * JITTER


def shape_difficulty(text: str) -> float:
    """The formula without markers or jitter: what the prompt's shape alone says."""
    words = len(text.split())
    lines = sum(1 for line in text.splitlines() if line.strip())
    questions = text.count("?")
    requirements = len(_REQUIREMENT.findall(text)) + len(_BULLET.findall(text))
    hard = len(_HARD.findall(text))
    score = (
        0.40 * _saturate(math.log1p(words), math.log1p(1000))
        + 0.10 * _saturate(max(0, lines - 1), 15)
        + 0.08 * _saturate(questions, 4)
        + 0.22 * _saturate(requirements, 6)
        + 0.20 * _saturate(hard, 3)
    )
    return min(1.0, max(0.0, score))


def difficulty(text: str) -> float:
    """How hard `text` is, in [0, 1]; a `[[sim:difficulty=x]]` marker sets it to exactly x.

    Deterministic: the same text always gets the same value. Raises `MarkerError` on a bad marker.
    """
    marked = parse_markers(text).difficulty
    if marked is not None:
        return marked
    plain = strip_markers(text)
    return min(1.0, max(0.0, shape_difficulty(plain) + jitter(plain)))
