"""What a simulated model says: deterministic text, tokens and logprobs from (model, prompt).

The point is not the prose but the signals Parjanya's confidence checks read. A model that is
capable of the prompt (`capability >= difficulty`) answers with per-token logprobs in
[-0.15, -0.01], so exp(mean logprob) > 0.85; an incapable one answers with logprobs in
[-2.0, -0.7], so exp(mean logprob) < 0.5, often hedges in words, and in JSON mode sometimes emits
JSON that does not parse. Every answer starts with `[<model>] ` and says it is simulated.

Offered a tool named by a `[[sim:tool=NAME]]` marker, a capable model calls it instead of answering
(with a small deterministic argument object); an incapable one answers in words, as weak models
do. Finish reasons use OpenAI's words; each wire module translates them into its API's own.

Every prose answer ends with `Final answer: <code>.`, so two answers can be compared the way
answers to a real question are (`learn/agreement.py`): a correct answer's code comes from the
prompt alone, so every model that gets the prompt right gives the same one; a wrong answer's code
comes from the model and the prompt, so it matches neither the right one nor another model's.
An incapable model is always wrong; a capable one is wrong on its blind spots (`blind=True`,
`SimModel.blind_spots`), but with a capable model's fluency, so no confidence check can tell.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
from dataclasses import dataclass, replace
from typing import Any, Literal

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


FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


@dataclass(frozen=True)
class ToolUse:
    """A call of one offered tool; `id` is deterministic, and each API prefixes it its own way."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    content: str
    tokens: tuple[Token, ...]
    finish_reason: FinishReason
    capable: bool
    stop_sequence: str | None = None  # the stop sequence that ended the text, if one did
    tool_call: ToolUse | None = None  # set exactly when finish_reason is "tool_calls"

    def filtered(self) -> Answer:
        """The same answer cut off by a safety filter: no text, no tokens."""
        return replace(self, content="", tokens=(), finish_reason="content_filter", tool_call=None)


def tokenize(text: str) -> list[str]:
    """Words and single punctuation marks, each with its leading whitespace; joins back to text."""
    return _TOKEN.findall(text)


def _rng(model: str, text: str) -> random.Random:
    digest = hashlib.sha256(f"{model}\0{text}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _topic(text: str, words: int = 12) -> str:
    head = " ".join(text.split()[:words]).replace('"', "'").rstrip(" .!?:;,")
    return head + ("..." if len(text.split()) > words else "")


def final_answer_code(model: str, prompt: str, *, correct: bool) -> str:
    """The code a final answer states: the prompt's own when correct, else the model's guess."""
    seed = prompt if correct else f"{model}\0{prompt}"
    return hashlib.sha256(f"final\0{seed}".encode()).hexdigest()[:6]


def _prose(
    model: str, topic: str, capable: bool, difficulty: float, final: str, rng: random.Random
) -> str:
    count = 2 + round(difficulty * 3) + rng.randint(0, 1)
    if capable:
        body = " ".join(rng.sample(_CONFIDENT, min(count, len(_CONFIDENT))))
        return f'[{model}] Simulated answer to "{topic}". {body} Final answer: {final}.'
    hedge = rng.choice(HEDGES) if rng.random() < 0.6 else ""
    weak = " ".join(s[0].upper() + s[1:] for s in rng.sample(_WEAK, min(count, len(_WEAK))))
    return f'[{model}] {hedge}simulated answer to "{topic}". {weak} Final answer: {final}.'


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


def _tool_use(model: str, prompt: str, tool: str, topic: str) -> ToolUse:
    digest = hashlib.sha256(f"{model}\0{prompt}\0{tool}".encode()).hexdigest()
    return ToolUse(id=digest[:24], name=tool, arguments={"query": _topic(topic)})


# Pure in its arguments (the RNG is seeded from model and prompt), so a repeated request is answered
# from memory: drawing tokens was half the sim's CPU, and a benchmark sends one prompt thousands of
# times. Answers are frozen, so sharing one is safe.
@functools.lru_cache(maxsize=4096)
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
    tool: str | None = None,
    blind: bool = False,
) -> Answer:
    """The answer of `model` to `prompt` (all message text); `topic` is what the answer quotes.

    `tool` names an offered tool that the prompt asks to be called; only a capable model does.
    `blind`: the prompt is one of the model's blind spots, so even a capable answer is wrong.
    """
    capable = capability >= difficulty
    final = final_answer_code(model, prompt, correct=capable and not blind)
    rng = _rng(model, prompt)
    if tool is not None and capable:
        call = _tool_use(model, prompt, tool, topic)
        pieces = tokenize(json.dumps(call.arguments))
        tokens = tuple(_token(piece, capable, 0, rng) for piece in pieces)
        return Answer("", tokens, "tool_calls", capable, tool_call=call)
    text = _prose(model, _topic(topic), capable, difficulty, final, rng)
    if json_mode:
        text = _as_json(model, text, capable, rng)
    cuts = sorted((i, s) for s in stop if s and (i := text.find(s)) >= 0)
    matched = cuts[0][1] if cuts else None
    if cuts:
        text = text[: cuts[0][0]]
    pieces = tokenize(text)
    finish: FinishReason = "stop"
    if max_tokens is not None and len(pieces) > max_tokens:
        pieces, finish, matched = pieces[:max_tokens], "length", None
    tokens = tuple(_token(piece, capable, top_logprobs, rng) for piece in pieces)
    return Answer("".join(pieces), tokens, finish, capable, stop_sequence=matched)
