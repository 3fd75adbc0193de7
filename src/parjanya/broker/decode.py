"""What bytes on a work queue mean: a hop, or `Undecodable` with the reason. Never anything else.

Anyone with access to the broker can push anything onto a list, so this decoder is total: every
input, whatever its shape, size, depth or encoding, either yields a valid `HopMessage` or raises
`Undecodable`. It is bounded before it parses: a body over `max_bytes` is refused unread, and JSON
nested deeper than `max_depth` is refused. CPython's C decoder stops by itself with
`RecursionError` past the interpreter's recursion limit (about a thousand levels), which no
`except ValueError` sees: that is how a nested list killed a feeder thread and the classifier.
Here it is caught, and a value within that limit is walked (iteratively) against `max_depth`.

The same rules serve the raw bytes a feeder pops (`decode_raw`), kombu's envelope check in
`broker.transport`, and the arguments Celery already decoded for a task body (`decode_args`), so a
message refused in one place is refused in every other.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from parjanya.schema import HopMessage

__all__ = [
    "DEFAULT_LIMITS",
    "DecodeLimits",
    "Undecodable",
    "decode_args",
    "decode_raw",
    "envelope_of",
    "hop_of",
    "load_bounded",
    "raw_text",
]


class Undecodable(ValueError):
    """A message that is not a hop this queue serves; `reason` goes into its dead letter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds on one message (config: `reliability.max_message_bytes`, `max_message_depth`)."""

    max_bytes: int = 1 << 20
    max_depth: int = 32


DEFAULT_LIMITS = DecodeLimits()


def _depth(value: Any) -> int:
    """How deeply lists and dicts nest in a parsed value (iterative: no recursion to exhaust)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in item)
    return deepest


def load_bounded(raw: bytes | str, limits: DecodeLimits = DEFAULT_LIMITS) -> Any:
    """`json.loads` within the size and depth bounds; anything else raises `Undecodable`."""
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
    if len(data) > limits.max_bytes:
        raise Undecodable(f"message of {len(data)} bytes is over the {limits.max_bytes} limit")
    try:
        value = json.loads(data)
    except RecursionError:
        raise Undecodable(f"JSON nested over the {limits.max_depth} limit") from None
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        raise Undecodable(f"undecodable message (not JSON): {str(exc)[:200]}") from None
    # Counting brackets is cheap and bounds the depth of every message a Parjanya producer writes;
    # only a value with many brackets pays for the exact walk.
    if data.count(b"[") + data.count(b"{") > limits.max_depth:
        depth = _depth(value)
        if depth > limits.max_depth:
            raise Undecodable(f"JSON nested {depth} deep is over the {limits.max_depth} limit")
    return value


def envelope_of(raw: bytes | str, limits: DecodeLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """A kombu message as the Redis transport keeps it on a list, checked for its fields."""
    envelope = load_bounded(raw, limits)
    if not (
        isinstance(envelope, dict)
        and isinstance(envelope.get("properties"), dict)
        and isinstance(envelope.get("headers", {}), dict)
        and isinstance(envelope.get("body"), str | bytes)
    ):
        raise Undecodable("undecodable message (not a kombu JSON envelope)")
    return envelope


def body_of(envelope: dict[str, Any], limits: DecodeLimits = DEFAULT_LIMITS) -> Any:
    """The decoded body of a checked envelope: Celery protocol 2's `[args, kwargs, embed]`."""
    body: str | bytes = envelope["body"]
    if envelope["properties"].get("body_encoding") == "base64":
        try:
            body = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise Undecodable("undecodable message (body is not base64)") from None
    return load_bounded(body, limits)


def decode_args(args: Any, kwargs: Any) -> HopMessage:
    """Celery's decoded task arguments -> the hop: one positional hop, or `message=` hop."""
    if isinstance(args, list | tuple) and len(args) == 1 and not kwargs:
        payload = args[0]
    elif isinstance(kwargs, dict) and not args and set(kwargs) == {"message"}:
        payload = kwargs["message"]
    else:
        raise Undecodable("invalid hop message: expected one hop as the only argument")
    try:
        return HopMessage.model_validate(payload)
    except ValidationError as exc:
        detail = "; ".join(f"{e['loc']}: {e['msg']}" for e in exc.errors(include_url=False)[:3])
        raise Undecodable(f"invalid hop message: {detail[:300]}") from None


def decode_raw(
    raw: bytes | str, task_name: str, limits: DecodeLimits = DEFAULT_LIMITS
) -> HopMessage:
    """A list entry of a work queue -> the hop it carries, if it is a `task_name` message."""
    return hop_of(envelope_of(raw, limits), task_name, limits)


def hop_of(
    envelope: dict[str, Any], task_name: str, limits: DecodeLimits = DEFAULT_LIMITS
) -> HopMessage:
    """The hop inside a checked envelope, if it is a `task_name` message."""
    found = envelope.get("headers", {}).get("task")
    if found != task_name:
        raise Undecodable(
            f"unknown task: {str(found)[:100]!r} on a queue that serves {task_name!r}"
        )
    body = body_of(envelope, limits)
    if not (isinstance(body, list) and len(body) == 3):
        raise Undecodable("invalid task message: body is not [args, kwargs, embed]")
    return decode_args(body[0], body[1])


def raw_text(raw: bytes | str | object, limit: int) -> str:
    """The first `limit` bytes of a message for its dead letter: text if UTF-8, else base64.

    Text keeps a dead letter readable in `parjanya dlq list`; base64 (prefixed `base64:`) keeps
    bytes that are not UTF-8 exactly as they arrived instead of replacing them.
    """
    if isinstance(raw, str):
        data = raw.encode("utf-8", "surrogateescape")
    elif isinstance(raw, bytes | bytearray | memoryview):
        data = bytes(raw)
    else:
        data = repr(raw).encode()
    cut = data[:limit]
    try:
        return cut.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(cut) - 3 and exc.reason == "unexpected end of data":
            return cut[: exc.start].decode("utf-8")  # a character cut in half by the limit
        return "base64:" + base64.b64encode(cut).decode()
