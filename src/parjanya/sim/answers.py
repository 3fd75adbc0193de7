"""What a simulated model says: deterministic text, tokens and logprobs from (model, prompt).

The point is not the prose but the signals Parjanya's confidence checks read. A model that is
capable of the prompt (`capability >= difficulty`) answers with per-token logprobs in
[-0.15, -0.01], so exp(mean logprob) > 0.85; an incapable one answers with logprobs in
[-2.0, -0.7], so exp(mean logprob) < 0.5, often hedges in words, and in JSON mode sometimes emits
JSON that does not parse. Every answer starts with `[<model>] ` and says it is simulated.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from typing import Literal

CAPABLE_LOGPROB = (-0.15, -0.01)
INCAPABLE_LOGPROB = (-2.0, -0.7)

HEDGES = ("I'm not certain, but ", "I may be wrong here, but ", "This is a rough guess: ")
_CONFIDENT = (
    "The request is taken as a whole and answered step by step.",
    "Each stated requirement is addressed in turn.",
    "The constraints given are respected throughout.",
    "Edge cases are named where they matter.",
    "The approach is checked against the question before answering.",
    "The result is summarised at the end.",
    "Assumptions are stated explicitly.",
)
_WEAK = (
    "some of the requirements may not be covered.",
    "parts of this answer are guesses.",
    "the harder constraints were not fully worked through.",
    "an important case may be missing.",
    "the reasoning here is incomplete.",
)
_ALTERNATIVES = (" the", " a", " it", " and", " this", ".", ",", " is", " to", " of")
_TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])")


@dataclass(frozen=True)
class Token:
    text: str
    logprob: float
    top: tuple[tuple[str, float], ...]  # (token, logprob), best first; empty unless asked for


@dataclass(frozen=True)
class Answer:
    content: str
    tokens: tuple[Token, ...]
    finish_reason: Literal["stop", "length"]
    capable: bool


def tokenize(text: str) -> list[str]:
    """Words and single punctuation marks, each with its leading whitespace; joins back to text."""
    return _TOKEN.findall(text)


def _rng(model: str, text: str) -> random.Random:
    digest = hashlib.sha256(f"{model}\0{text}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _topic(text: str, words: int = 12) -> str:
    head = " ".join(text.split()[:words]).replace('"', "'").rstrip(" .!?:;,")
    return head + ("..." if len(text.split()) > words else "")


def _prose(model: str, topic: str, capable: bool, difficulty: float, rng: random.Random) -> str:
    count = 2 + round(difficulty * 3) + rng.randint(0, 1)
    if capable:
        body = " ".join(rng.sample(_CONFIDENT, min(count, len(_CONFIDENT))))
        return f'[{model}] Simulated answer to "{topic}". {body}'
    hedge = rng.choice(HEDGES) if rng.random() < 0.6 else ""
    weak = " ".join(s[0].upper() + s[1:] for s in rng.sample(_WEAK, min(count, len(_WEAK))))
    return f'[{model}] {hedge}simulated answer to "{topic}". {weak}'


def _as_json(model: str, prose: str, capable: bool, rng: random.Random) -> str:
    text = json.dumps({"answer": prose, "model": model, "simulated": True})
    if capable or rng.random() < 0.5:
        return text
    return text[:-1] if rng.random() < 0.5 else "Here is the JSON you asked for:\n" + text


def _token(text: str, capable: bool, top: int, rng: random.Random) -> Token:
    lo, hi = CAPABLE_LOGPROB if capable else INCAPABLE_LOGPROB
    logprob = rng.uniform(lo, hi)
    alternatives = [
        (alt, logprob - rng.uniform(3.0, 6.0) if capable else logprob - rng.uniform(0.1, 2.0))
        for alt in rng.sample(_ALTERNATIVES, min(max(top - 1, 0), len(_ALTERNATIVES)))
    ]
    ranked = sorted([(text, logprob), *alternatives], key=lambda pair: -pair[1])
    return Token(text, logprob, tuple(ranked) if top > 0 else ())


def compose(
    *,
    model: str,
    capability: float,
    difficulty: float,
    prompt: str,
    topic: str,
    json_mode: bool = False,
    max_tokens: int | None = None,
    stop: tuple[str, ...] = (),
    top_logprobs: int = 0,
) -> Answer:
    """The answer of `model` to `prompt` (all message text); `topic` is what the answer quotes."""
    capable = capability >= difficulty
    rng = _rng(model, prompt)
    text = _prose(model, _topic(topic), capable, difficulty, rng)
    if json_mode:
        text = _as_json(model, text, capable, rng)
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    if cuts:
        text = text[: min(cuts)]
    pieces = tokenize(text)
    finish: Literal["stop", "length"] = "stop"
    if max_tokens is not None and len(pieces) > max_tokens:
        pieces, finish = pieces[:max_tokens], "length"
    tokens = tuple(_token(piece, capable, top_logprobs, rng) for piece in pieces)
    return Answer("".join(pieces), tokens, finish, capable)
