"""Property-based: whatever a caller hands the SDK, it is a validation error with nothing written,
or a request that is valid, within every bound, and read back from the store as it was accepted.

Hypothesis generates garbage of every shape (scalars of every type, NaN and infinities, huge
integers, bytes, nested lists and dicts), requests whose fields are each either plausible or
garbage, and valid requests with one non-finite number or one oversize value planted somewhere.
The store is a fakeredis created for each example, so "nothing written" is "no key at all".
"""

from __future__ import annotations

import math
from typing import Any

import fakeredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from parjanya.client import Client, as_request
from parjanya.config import ParjanyaConfig
from parjanya.limits import DEFAULT_LIMITS
from parjanya.providers.base import ChatRequest
from parjanya.schema import ChatMessage, TaskRequest
from parjanya.store import TaskStore

CONFIG = ParjanyaConfig()
CHECKS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=2**200),
    st.floats(),  # NaN and both infinities included
    st.text(max_size=40),
    st.binary(max_size=40),
    st.sampled_from(["user", "assistant", "tool", "system", "low", "high", "json", "critical"]),
)
garbage = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=12), inner, max_size=4),
    ),
    max_leaves=24,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "tool", "system", "developer", "bot"])},
        optional={
            "content": st.one_of(st.text(max_size=30), garbage),
            "name": st.one_of(st.text(max_size=10), garbage),
            "tool_call_id": st.one_of(st.text(max_size=10), garbage),
            "tool_calls": garbage,
        },
    ),
    max_size=3,
)
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "prompt": st.text(max_size=60),
    "messages": messages,
    "task_type": st.text(max_size=10),
    "context_tokens": st.integers(),
    "sla": st.sampled_from(["critical", "standard", "batch", "urgent"]),
    "deadline_s": st.floats(),
    "budget_usd": st.floats(),
    "min_tier": st.sampled_from(["low", "mid", "high", "top"]),
    "max_tier": st.sampled_from(["low", "mid", "high", "top"]),
    "tenant": st.text(max_size=10),
    "metadata": st.dictionaries(st.text(max_size=8), garbage, max_size=3),
    "idempotency_key": st.text(max_size=10),
    "response_format": st.sampled_from(["text", "json", "xml"]),
    "max_output_tokens": st.integers(),
    "temperature": st.floats(),
    "stop": st.lists(st.text(max_size=5), max_size=10),
    "tools": st.lists(st.dictionaries(st.text(max_size=8), garbage, max_size=3), max_size=3),
    "tool_choice": garbage,
    "cache": st.booleans(),
    "max_teir": st.just("high"),  # a typo of an option is an unknown field
}
request_like = st.fixed_dictionaries(
    {}, optional={k: st.one_of(v, garbage) for k, v in PLAUSIBLE.items()}
)


def _client() -> tuple[Client, fakeredis.FakeRedis]:
    client = Client("redis://127.0.0.1:1/0", config=CONFIG)
    redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    client.store = TaskStore(redis)
    return client, redis


def _submit_judged(request: Any) -> None:
    """The property: a ValidationError and an empty store, or a valid task stored as accepted."""
    client, redis = _client()
    try:
        handle = client.submit(request)
    except ValidationError:
        assert redis.keys() == []
        return
    finally:
        client.close()
    stored = client.store.get_request(handle.id)
    assert stored is not None
    assert stored.bounds_problem(DEFAULT_LIMITS) is None
    assert stored == as_request(request)  # a str is a prompt


@CHECKS
@given(garbage)
def test_garbage_of_any_shape_is_refused_or_valid(request: Any) -> None:
    _submit_judged(request)


@CHECKS
@given(request_like)
def test_requests_with_garbage_fields_are_refused_or_valid(request: dict[str, Any]) -> None:
    _submit_judged(request)


@CHECKS
@given(st.one_of(st.none(), st.integers(), st.floats(), st.binary(), st.lists(garbage)))
def test_a_value_that_is_not_a_request_is_a_validation_error(request: Any) -> None:
    client, redis = _client()
    try:
        client.submit(request)
    except ValidationError:
        assert redis.keys() == []
    else:
        raise AssertionError(f"accepted {request!r}")


def _plant(tree: Any, path: list[int], value: Any) -> Any:
    """`tree` with `value` put at a place chosen by `path`, however deep the tree goes."""
    if not isinstance(tree, dict | list):
        return value
    if not path or not tree:
        return [*tree, value] if isinstance(tree, list) else {**tree, "planted": value}
    if isinstance(tree, dict):
        key = sorted(tree)[path[0] % len(tree)]
        return {**tree, key: _plant(tree[key], path[1:], value)}
    index = path[0] % len(tree)
    return [*tree[:index], _plant(tree[index], path[1:], value), *tree[index + 1 :]]


json_trees = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3),
        st.dictionaries(st.text(max_size=6), inner, min_size=1, max_size=3),
    ),
    max_leaves=10,
)


@CHECKS
@given(
    field=st.sampled_from(["metadata", "tools", "tool_choice", "temperature", "budget_usd"]),
    tree=json_trees,
    path=st.lists(st.integers(min_value=0, max_value=8), max_size=6),
    bad=st.sampled_from([math.nan, math.inf, -math.inf]),
)
def test_a_non_finite_number_anywhere_is_refused(
    field: str, tree: Any, path: list[int], bad: float
) -> None:
    planted = _plant(tree, path, bad)
    value = {
        "metadata": {"m": planted},
        "tools": [{"type": "function", "x": planted}],
        "tool_choice": planted,
    }.get(field, bad)
    client, redis = _client()
    try:
        client.submit({"prompt": "a valid prompt", field: value})
    except ValidationError as exc:
        assert "finite" in str(exc)
        assert redis.keys() == []
    else:
        raise AssertionError(f"accepted {bad} in {field}")


@CHECKS
@given(
    field=st.sampled_from(["metadata", "name", "stop", "tools", "arguments", "tool_choice"]),
    extra=st.integers(min_value=1, max_value=5000),
)
def test_oversize_in_any_field_is_refused(field: str, extra: int) -> None:
    limits = DEFAULT_LIMITS
    blob = "x" * (limits.max_request_bytes + extra)
    message: dict[str, Any] = {"role": "user", "content": "hi"}
    request: dict[str, Any] = {
        "metadata": {"prompt": "p", "metadata": {"b": "m" * (limits.max_metadata_bytes + extra)}},
        "name": {"messages": [{**message, "name": "n" * (limits.max_identifier_chars + extra)}]},
        "stop": {"prompt": "p", "stop": [blob]},
        "tools": {"prompt": "p", "tools": [{"type": "function", "d": blob}]},
        "arguments": {
            "messages": [
                message,
                {"role": "assistant", "tool_calls": [{"id": "c", "name": "f", "arguments": blob}]},
            ]
        },
        "tool_choice": {"prompt": "p", "tool_choice": blob},
    }[field]
    client, redis = _client()
    try:
        client.submit(request)
    except ValidationError:
        assert redis.keys() == []
    else:
        raise AssertionError(f"accepted oversize {field}")


@CHECKS
@given(garbage)
def test_the_request_models_raise_only_validation_errors(data: Any) -> None:
    """Python objects and arbitrary bytes alike: a model or a ValidationError, nothing else."""
    models: tuple[type[TaskRequest | ChatRequest | ChatMessage], ...] = (
        TaskRequest,
        ChatRequest,
        ChatMessage,
    )
    for model in models:
        for parse in (model.model_validate, model.model_validate_json):
            payload = data if parse is model.model_validate else repr(data).encode()
            try:
                parsed = parse(payload)
            except ValidationError as exc:
                assert exc.error_count() >= 1
            else:
                assert isinstance(parsed, model)
