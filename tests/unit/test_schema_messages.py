"""Multi-turn tool conversations in OpenAI's chat format, as agent frameworks send them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from parjanya import TaskRequest
from parjanya.schema import ToolCall

OPENAI_CONVERSATION = [
    {"role": "user", "content": "What is the weather in Pune?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Pune"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 31}'},
]


def test_an_openai_tool_conversation_is_accepted_as_sent() -> None:
    request = TaskRequest.model_validate({"messages": OPENAI_CONVERSATION})
    assert request.messages is not None
    _user, asked, answered = request.messages
    assert asked.content == "" and asked.tool_calls == [
        ToolCall(id="call_1", name="get_weather", arguments='{"city": "Pune"}')
    ]
    assert answered.tool_call_id == "call_1"
    again = TaskRequest.model_validate_json(request.model_dump_json())  # the store round trip
    assert again == request


@pytest.mark.parametrize(
    ("message", "complaint"),
    [
        ({"role": "tool", "content": "21"}, "needs the tool_call_id"),
        ({"role": "user", "content": "hi", "tool_call_id": "call_1"}, "tool message only"),
        (
            {
                "role": "user",
                "content": "hi",
                "tool_calls": [{"id": "c", "name": "f", "arguments": "{}"}],
            },
            "assistant message only",
        ),
        (
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "type": "retrieval", "function": {"name": "f"}}],
            },
            "is not 'function'",
        ),
    ],
)
def test_tool_fields_on_the_wrong_message_are_refused_with_a_reason(
    message: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint):
        TaskRequest.model_validate({"messages": [message]})
