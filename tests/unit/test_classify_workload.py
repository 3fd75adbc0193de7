"""The demo workload, and the classifier's routing on it: the check that matters most."""

from __future__ import annotations

from collections import Counter

import pytest

from parjanya.classify import classify
from parjanya.config import ParjanyaConfig, RoutingConfig
from parjanya.runtime.workload import demo_workload
from parjanya.schema import TaskRequest

EXPECTED_TIER = {"routine": "low", "architectural": "mid", "research": "high"}


@pytest.fixture(scope="module")
def workload() -> list[tuple[str, TaskRequest]]:
    return demo_workload(200)


def test_mix_is_60_30_10_and_deterministic(workload: list[tuple[str, TaskRequest]]) -> None:
    assert Counter(c for c, _ in workload) == {"routine": 120, "architectural": 60, "research": 20}
    again = demo_workload(200)
    assert [(c, r.model_dump_json()) for c, r in again] == [
        (c, r.model_dump_json()) for c, r in workload
    ]
    assert demo_workload(200, seed=8) != workload
    assert Counter(c for c, _ in demo_workload(40)) == {
        "routine": 24,
        "architectural": 12,
        "research": 4,
    }


def test_prompts_vary(workload: list[tuple[str, TaskRequest]]) -> None:
    for category in EXPECTED_TIER:
        prompts = [r.prompt for c, r in workload if c == category]
        templates = {r.metadata["template"] for c, r in demo_workload(2_000) if c == category}
        assert len(templates) >= 15, category
        assert len(set(prompts)) >= 0.7 * len(prompts), category


def test_research_carries_attached_context(workload: list[tuple[str, TaskRequest]]) -> None:
    hints = [r.context_tokens for c, r in workload if c == "research" and r.context_tokens]
    assert hints and all(30_000 <= h <= 120_000 for h in hints)


def test_routes_most_of_each_category_to_its_tier(
    workload: list[tuple[str, TaskRequest]],
) -> None:
    config = ParjanyaConfig(routing=RoutingConfig(scorer="heuristic"))
    routed: dict[str, Counter[str]] = {c: Counter() for c in EXPECTED_TIER}
    for category, request in workload:
        routed[category][classify(request, config).tier] += 1
    share = {c: routed[c][EXPECTED_TIER[c]] / sum(routed[c].values()) for c in EXPECTED_TIER}
    print("routing accuracy on demo_workload(200):", {c: f"{s:.0%}" for c, s in share.items()})
    assert share["routine"] >= 0.8, routed
    assert share["architectural"] >= 0.7, routed
    assert share["research"] >= 0.7, routed
    assert routed["routine"]["high"] == 0 and routed["research"]["low"] == 0, routed
