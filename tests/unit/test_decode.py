"""The bounded, total decoder of queue messages: every input is a hop or `Undecodable`."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parjanya.app import create_app
from parjanya.broker.decode import (
    DecodeLimits,
    Undecodable,
    decode_args,
    decode_raw,
    load_bounded,
    raw_text,
)
from parjanya.broker.envelope import HopEnvelopes
from parjanya.config import ParjanyaConfig, Settings
from parjanya.queues import INTAKE_TASK, TIER_TASK
from parjanya.schema import HopMessage

HOP = HopMessage(task_id="t1", hop=1, stage="low")


def envelope(body: bytes, task: str = TIER_TASK) -> bytes:
    return json.dumps(
        {
            "body": base64.b64encode(body).decode(),
            "headers": {"task": task},
            "properties": {"body_encoding": "base64"},
        }
    ).encode()


def real_message(message: HopMessage = HOP) -> bytes:
    settings = Settings(broker_url="redis://x.invalid/0")
    app = create_app(settings, ParjanyaConfig())
    return HopEnvelopes(app).for_hop(message).payload.encode()


def test_the_message_a_parjanya_producer_writes_decodes_to_its_hop() -> None:
    assert decode_raw(real_message(), TIER_TASK) == HOP


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[1, 2, 3]", "not a kombu JSON envelope"),
        (envelope(json.dumps([[], {}, {}]).encode()), "expected one hop"),
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
        (envelope(b"[" * 5_000 + b"]" * 5_000), "nested"),
        (envelope(b"[" * 40 + b"]" * 40), "nested 40 deep"),
        (b"\xff\xfe\x00\xc3\x28", "not JSON"),
        (b"plain text", "not JSON"),
        (b'{"body": 1, "properties": {}, "headers": {}}', "not a kombu JSON envelope"),
        (b"x" * (2 << 20), "over the"),
        (envelope(b"[[{}], {}, {}]", task="other.task"), "unknown task"),
        (envelope(b"[[{}], {}, {}]", task=INTAKE_TASK), "unknown task"),
        (
            envelope(json.dumps([[{"task_id": "t", "hop": -1, "stage": "low"}], {}, {}]).encode()),
            "invalid hop",
        ),
        (
            json.dumps(
                {
                    "body": "!!",
                    "headers": {"task": TIER_TASK},
                    "properties": {"body_encoding": "base64"},
                }
            ).encode(),
            "base64",
        ),
    ],
)
def test_hostile_shapes_are_undecodable_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(Undecodable) as caught:
        decode_raw(raw, TIER_TASK)
    assert reason in caught.value.reason


def test_depth_and_size_bounds_are_the_configured_ones() -> None:
    nested = b"[" * 10 + b"]" * 10
    assert load_bounded(nested, DecodeLimits(max_bytes=100, max_depth=10)) is not None
    with pytest.raises(Undecodable, match="nested 10 deep"):
        load_bounded(nested, DecodeLimits(max_bytes=100, max_depth=9))
    with pytest.raises(Undecodable, match="over the 19"):
        load_bounded(nested, DecodeLimits(max_bytes=19, max_depth=10))


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    assert load_bounded(json.dumps({"a": "[[[[" * 100}).encode()) == {"a": "[[[[" * 100}


def test_task_arguments_decode_by_the_same_rules() -> None:
    assert decode_args([HOP.model_dump()], {}) == HOP
    assert decode_args((), {"message": HOP.model_dump()}) == HOP
    for args, kwargs in [
        ((), {}),
        ([1, 2], {}),
        (["x"], {}),
        ([HOP.model_dump()], {"x": 1}),
        (None, None),
    ]:
        with pytest.raises(Undecodable):
            decode_args(args, kwargs)


def test_raw_text_keeps_utf8_as_text_and_other_bytes_exactly() -> None:
    assert raw_text(b"hello", 100) == "hello"
    assert raw_text("é" * 10, 5) == "éé"  # a character cut in half is dropped, not mangled
    kept = raw_text(b"\xff\xfe\x00abc", 100)
    assert kept.startswith("base64:") and base64.b64decode(kept[7:]) == b"\xff\xfe\x00abc"
    assert len(raw_text(b"x" * 10_000, 4096)) == 4096


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=2000),
        json_values.map(lambda v: json.dumps(v).encode()),
        json_values.map(lambda v: envelope(json.dumps(v).encode())),
        st.tuples(json_values, json_values).map(
            lambda pair: envelope(json.dumps([pair[0], pair[1], {}]).encode())
        ),
        st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n + b"]" * n),
    )
)
def test_any_bytes_decode_to_a_hop_or_undecodable(raw: bytes) -> None:
    try:
        message = decode_raw(raw, TIER_TASK)
    except Undecodable as exc:
        assert exc.reason
    else:
        assert isinstance(message, HopMessage)
