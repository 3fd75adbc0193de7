"""The public surface is `parjanya.__all__`; nothing else is promised."""

from __future__ import annotations

import parjanya


def test_exported_members_exist_and_match() -> None:
    exported = {name for name in dir(parjanya) if not name.startswith("_")}
    assert set(parjanya.__all__) <= exported
    assert {"Client", "TaskRequest", "TaskResult"} <= set(parjanya.__all__)


def test_request_validation_names_the_field() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="budget_usd"):
        parjanya.TaskRequest(prompt="x", budget_usd=-1)
    with pytest.raises(ValidationError, match="exactly one of 'messages' or 'prompt'"):
        parjanya.TaskRequest()
    with pytest.raises(ValidationError, match="min_tier 'high' is above max_tier 'low'"):
        parjanya.TaskRequest(prompt="x", min_tier="high", max_tier="low")
