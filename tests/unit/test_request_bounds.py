"""The request bounds cover every field (limits.py), and nothing that breaks one is written.

Given a client whose store is a fakeredis of this test's own, when a request breaks a bound, then
`submit` raises pydantic's ValidationError naming it and the store holds no key at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from pydantic import ValidationError

from parjanya.client import Client
from parjanya.config import ParjanyaConfig
from parjanya.limits import MAX_REQUEST_BYTES, RequestLimits
from parjanya.schema import TaskRequest
from parjanya.store import TaskStore

MB = 1024 * 1024


def client_on_fakeredis(config: ParjanyaConfig | None = None) -> tuple[Client, fakeredis.FakeRedis]:
    """A client whose store is an empty fakeredis (its broker URL is never dialled by a refusal)."""
    client = Client("redis://127.0.0.1:1/0", config=config or ParjanyaConfig())
    redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    client.store = TaskStore(redis)
    return client, redis


@pytest.fixture
def sdk() -> Iterator[tuple[Client, fakeredis.FakeRedis]]:
    client, redis = client_on_fakeredis()
    yield client, redis
    redis.close()


def _deep(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth):
        node["a"] = {}
        node = node["a"]
    return root


def _deep_list(depth: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(depth):
        node.append([])
        node = node[0]
    return root


def _tool(description: str = "d") -> dict[str, Any]:
    return {"type": "function", "function": {"name": "f", "description": description}}


OVERSIZE: dict[str, dict[str, Any]] = {
    "metadata": {"prompt": "x", "metadata": {"blob": "m" * (5 * MB)}},
    "message name": {"messages": [{"role": "user", "content": "x", "name": "n" * (2 * MB)}]},
    "tool arguments": {
        "messages": [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "name": "f", "arguments": "a" * (5 * MB)}],
            },
        ]
    },
    "tools": {"prompt": "x", "tools": [_tool("t" * (5 * MB))]},
    "too many tools": {"prompt": "x", "tools": [_tool()] * 129},
    "stop": {"prompt": "x", "stop": ["s" * MB] * 5},
    "too many stops": {"prompt": "x", "stop": ["s"] * 9},
    "tool_choice": {"prompt": "x", "tool_choice": {"blob": "c" * (5 * MB)}},
    "prompt": {"prompt": "p" * 400_001},
    "context_tokens": {"prompt": "x", "context_tokens": 2**200},
    "deep metadata": {"prompt": "x", "metadata": _deep(33)},
    "very deep metadata": {"prompt": "x", "metadata": _deep(50_000)},
    "deep tool_choice": {"prompt": "x", "tool_choice": _deep_list(40)},
}


@pytest.mark.parametrize("case", sorted(OVERSIZE))
def test_every_field_counts_against_the_bounds(
    sdk: tuple[Client, fakeredis.FakeRedis], case: str
) -> None:
    client, redis = sdk
    with pytest.raises(ValidationError):
        client.submit(OVERSIZE[case])
    assert redis.keys() == []


NON_FINITE: dict[str, dict[str, Any]] = {
    "temperature": {"prompt": "x", "temperature": float("nan")},
    "budget_usd": {"prompt": "x", "budget_usd": float("inf")},
    "deadline_s": {"prompt": "x", "deadline_s": float("-inf")},
    "metadata": {"prompt": "x", "metadata": {"a": [1, {"b": float("nan")}]}},
    "tools": {"prompt": "x", "tools": [{"type": "function", "weight": float("inf")}]},
    "tool_choice": {"prompt": "x", "tool_choice": {"x": float("-inf")}},
}


@pytest.mark.parametrize("case", sorted(NON_FINITE))
def test_nan_and_infinity_are_refused_anywhere(
    sdk: tuple[Client, fakeredis.FakeRedis], case: str
) -> None:
    client, redis = sdk
    with pytest.raises(ValidationError, match="finite"):
        client.submit(NON_FINITE[case])
    assert redis.keys() == []


def test_nan_spelled_in_json_is_refused_too() -> None:
    with pytest.raises(ValidationError, match="finite"):
        TaskRequest.model_validate_json('{"prompt": "x", "metadata": {"a": NaN}}')


@pytest.mark.parametrize("garbage", [None, 42, 4.2, b"prompt", ["x"], ("x",), True, object()])
def test_a_wrong_type_is_a_validation_error(
    sdk: tuple[Client, fakeredis.FakeRedis], garbage: object
) -> None:
    client, redis = sdk
    with pytest.raises(ValidationError):
        client.submit(garbage)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        client.submit_many(["fine", garbage])  # type: ignore[list-item]
    assert redis.keys() == []


def test_a_request_changed_after_it_was_built_is_checked_again(
    sdk: tuple[Client, fakeredis.FakeRedis],
) -> None:
    client, redis = sdk
    request = TaskRequest(prompt="x")
    request.metadata = {"blob": "m" * MB}
    with pytest.raises(ValidationError, match="metadata is"):
        client.submit(request)
    built_unchecked = TaskRequest.model_construct(prompt="x", temperature=float("nan"))
    with pytest.raises(ValidationError, match="finite"):
        client.submit(built_unchecked)
    assert redis.keys() == []


def test_the_configured_limits_are_what_submit_enforces() -> None:
    config = ParjanyaConfig(limits=RequestLimits(max_request_bytes=2048, max_stop=1))
    client, redis = client_on_fakeredis(config)
    with pytest.raises(ValidationError, match="limit is 2048"):
        client.submit({"prompt": "p" * 3000})
    with pytest.raises(ValidationError, match="stop has 2 entries; the limit is 1"):
        client.submit({"prompt": "x", "stop": ["a", "b"]})
    assert redis.keys() == []
    handle = client.submit({"prompt": "p" * 1000, "stop": ["a"]})
    assert client.store.get_request(handle.id) == TaskRequest(prompt="p" * 1000, stop=["a"])


def test_a_limit_may_be_lowered_in_config_but_never_raised() -> None:
    with pytest.raises(ValidationError):
        RequestLimits(max_request_bytes=MAX_REQUEST_BYTES + 1)
    with pytest.raises(ValidationError):
        ParjanyaConfig.model_validate({"limits": {"max_json_depth": 1000}})


def test_a_request_at_the_bounds_is_accepted_and_read_back_whole(
    sdk: tuple[Client, fakeredis.FakeRedis],
) -> None:
    client, _redis = sdk
    request = {
        "messages": [{"role": "user", "content": "c" * 400_000, "name": "n" * 256}],
        "metadata": {"k": "v" * 60_000, "deep": _deep(31)},
        "stop": ["s"] * 8,
        "tools": [_tool()] * 128,
    }
    handle = client.submit(request)
    stored = client.store.get_request(handle.id)
    assert stored == TaskRequest.model_validate(request)
