"""The shipped YAML is the documented default: it must equal the built-in defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from parjanya.config import ParjanyaConfig, ReliabilityConfig, Weights, expand_env, load_config

REPO = Path(__file__).resolve().parents[2]


def test_shipped_yaml_equals_the_built_in_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARJANYA_SIM_URL", raising=False)
    assert load_config(REPO / "config" / "parjanya.yaml") == ParjanyaConfig()


def test_env_expansion_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM", "http://sim:1")
    assert expand_env({"a": ["${SIM:-x}/v1", "${NOPE_NOT_SET:-y}"]}) == {
        "a": ["http://sim:1/v1", "y"]
    }


def test_weights_must_sum_to_one() -> None:
    with pytest.raises(ValidationError, match=r"sum to 1\.0"):
        Weights(structural=0.5)


def test_visibility_timeout_must_cover_twice_the_task_limit() -> None:
    with pytest.raises(ValidationError, match="2 x task_time_limit_s"):
        ReliabilityConfig(task_time_limit_s=300, visibility_timeout_s=400)


def test_unknown_config_keys_are_errors() -> None:
    with pytest.raises(ValidationError, match="max_escalation"):
        ParjanyaConfig.model_validate({"routing": {"max_escalation": 2}})


def test_the_judge_checker_names_a_configured_deployment() -> None:
    judged = ParjanyaConfig.model_validate(
        {"confidence": {"checker": "judge", "judge_deployment": "sim-small"}}
    )
    assert judged.confidence.judge_deployment == "sim-small"
    assert ParjanyaConfig().confidence.checker == "default"
    with pytest.raises(ValidationError, match=r"needs confidence\.judge_deployment"):
        ParjanyaConfig.model_validate({"confidence": {"checker": "judge"}})
    with pytest.raises(ValidationError, match="'gpt-9' is not a configured deployment"):
        ParjanyaConfig.model_validate({"confidence": {"judge_deployment": "gpt-9"}})
