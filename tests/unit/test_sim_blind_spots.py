"""The sim's final answers and blind spots: what makes a confidently wrong answer possible."""

from __future__ import annotations

import re
from typing import Any

import httpx

from parjanya.sim import SimConfig, SimProvider, difficulty_marker

from .test_sim import complete, confidence, content, run_with

BLIND = SimConfig(latency_scale=0, models={"sim-small": {"blind_spots": ["Reverse Charge"]}})
_FINAL = re.compile(r"Final answer: (\w+)\.$")


def _final(text: str) -> str:
    match = _FINAL.search(text)
    assert match is not None, text
    return match[1]


def _ask(provider: SimProvider, model: str, prompt: str) -> tuple[str, float]:
    async def one(client: httpx.AsyncClient) -> dict[str, Any]:
        body: dict[str, Any] = (await complete(client, model, prompt, logprobs=True)).json()
        return body

    body = run_with(provider, one)
    return content(body), confidence(body)


def test_models_that_get_a_prompt_right_state_the_same_final_answer() -> None:
    provider = SimProvider(SimConfig(latency_scale=0))
    easy = "Rename the variable tmp to total in cart.py."
    small, _ = _ask(provider, "sim-small", easy)
    large, _ = _ask(provider, "sim-large", easy)
    assert _final(small) == _final(large)
    hard = f"{easy} {difficulty_marker(0.9)}"
    wrong_small, _ = _ask(provider, "sim-small", hard)
    wrong_medium, _ = _ask(provider, "sim-medium", hard)
    right, _ = _ask(provider, "sim-large", hard)
    assert len({_final(wrong_small), _final(wrong_medium), _final(right)}) == 3


def test_a_blind_spot_is_answered_wrong_with_a_capable_models_confidence() -> None:
    provider = SimProvider(BLIND)
    prompt = "Apply the VAT reverse charge to invoice 1832."
    small, small_confidence = _ask(provider, "sim-small", prompt)
    medium, _ = _ask(provider, "sim-medium", prompt)
    assert _final(small) != _final(medium)
    assert small_confidence > 0.85  # as sure as when it is right: no confidence check can tell
    assert small.startswith("[sim-small] Simulated answer")  # no hedging either
    other, _ = _ask(provider, "sim-small", "Apply the discount to invoice 1832.")
    other_medium, _ = _ask(provider, "sim-medium", "Apply the discount to invoice 1832.")
    assert _final(other) == _final(other_medium)  # only the blind spot is wrong
