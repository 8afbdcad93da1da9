"""The Responses door (POST /v1/responses), its pure translations both ways: instructions and input
items into chat messages, tools, choice, format and sampling into chat fields (and what is
refused, naming the param), and a chat answer back into a response."""

from __future__ import annotations

from typing import Any

import pytest
from responses_door_cases import PERSON_FORMAT, WEATHER_TOOL

from tollgate.common.errors import InvalidRequest
from tollgate.gateway.pricing.cost import Usage
from tollgate.gateway.responses_door.answer import response_shell, responses_answer
from tollgate.gateway.responses_door.input_items import chat_messages
from tollgate.gateway.responses_door.request import parse_responses_request

# -- pure translations -------------------------------------------------------------------------


def test_instructions_messages_and_function_turns_become_chat_messages() -> None:
    image = {"type": "input_image", "image_url": "data:image/png;base64,iVBO", "detail": "low"}
    messages = chat_messages(
        "Be brief.",
        [
            {"role": "developer", "content": "Answer in English."},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is here?"},
                    image,
                    {"type": "input_image", "image_url": "https://x.test/a.jpg"},
                ],
            },
            {"role": "assistant", "content": [{"type": "output_text", "text": "Let me look."}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},  # another model's: dropped
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city":"Oslo"}',
            },
            {
                "type": "function_call",
                "call_id": "call_2",
                "name": "get_weather",
                "arguments": '{"city":"Rome"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "rain"},
            {
                "type": "function_call_output",
                "call_id": "call_2",
                "output": [
                    {"type": "input_text", "text": "sun"},
                    {"type": "input_image", "image_url": "https://x.test/sky.png"},
                ],
            },
            {"role": "user", "content": "And tomorrow?"},
        ],
    )
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Answer in English."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is here?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
        {"role": "tool", "tool_call_id": "call_2", "content": "sun"},
        # a tool output's image follows the run of tool messages, as the user's
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/sky.png"}}]},
        {"role": "user", "content": "And tomorrow?"},
    ]
    assert chat_messages(None, "Hi") == [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"model": None}, "model"),
        ({"input": []}, "input"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0]",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]},
            "input[0].content[0].image_url",
        ),
        (
            {"input": [{"role": "system", "content": [{"type": "input_image", "image_url": "https://x"}]}]},
            "input[0].content",
        ),
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"background": True}, "background"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"type": "file_search", "vector_store_ids": ["vs"]}]}, "tools[0].type"),
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice.type"),
        ({"tool_choice": {"type": "function", "name": "nope"}}, "tool_choice.name"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"include": ["reasoning.encrypted_content"]}, "include"),
        ({"truncation": "auto"}, "truncation"),
        ({"frequency_penalty": 1}, "frequency_penalty"),
        ({"stream": "yes"}, "stream"),
    ],
)
def test_what_cannot_be_honoured_is_refused_naming_the_param(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_responses_request({"model": "m", "input": "hi", **extra})
    assert refused.value.param == param, refused.value.message


def test_tools_choice_format_and_sampling_become_chat_fields() -> None:
    parsed = parse_responses_request(
        {
            "model": "m",
            "input": "hi",
            "instructions": "Be brief.",
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "parallel_tool_calls": False,
            "text": {"format": PERSON_FORMAT},
            "max_output_tokens": 40,
            "temperature": 0.5,
            "top_p": 0.9,
            "user": "u-1",
            "store": False,
            "metadata": {"ticket": "42"},
            "prompt_cache_key": "k",  # a hint: read, not forwarded
            "stream": True,
        }
    )
    assert (parsed.model, parsed.max_output_tokens, parsed.stream) == ("m", 40, True)
    assert parsed.payload == {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": WEATHER_TOOL["parameters"],
                    "description": "The weather in a city.",
                    "strict": True,
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": PERSON_FORMAT["schema"], "strict": True},
        },
        "max_tokens": 40,
        "temperature": 0.5,
        "top_p": 0.9,
        "user": "u-1",
    }
    echo = parsed.echo
    assert echo["tools"] == [WEATHER_TOOL] and echo["text"] == {"format": PERSON_FORMAT}
    assert (echo["store"], echo["metadata"], echo["parallel_tool_calls"]) == (False, {"ticket": "42"}, False)
    defaults = parse_responses_request(
        {"model": "m", "input": "hi", "text": {"format": {"type": "json_object"}}}
    )
    assert defaults.payload["response_format"] == {"type": "json_object"}
    assert (defaults.echo["store"], defaults.echo["tool_choice"], defaults.echo["tools"]) == (
        True,
        "auto",
        [],
    )
    assert "max_tokens" not in defaults.payload  # as chat: the hold uses the model's default


def test_a_chat_answer_becomes_a_response_with_billed_usage() -> None:
    shell = response_shell("req_abc", "gpt-sim", 1700000000, {"store": True})
    call = {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    data = {
        "choices": [{"message": {"content": "Hi there", "tool_calls": [call]}, "finish_reason": "tool_calls"}]
    }
    body = responses_answer(
        data, shell=shell, request_id="req_abc", usage=Usage(12, 5, cached_in=4, reasoning=2)
    )
    assert (body["id"], body["object"], body["status"], body["incomplete_details"]) == (
        "resp_abc",
        "response",
        "completed",
        None,
    )
    message, function_call = body["output"]
    assert message == {
        "id": "msg_abc",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "Hi there", "annotations": [], "logprobs": []}],
    }
    assert function_call["id"].startswith("fc_")
    assert {k: function_call[k] for k in ("type", "call_id", "name", "arguments", "status")} == {
        "type": "function_call",
        "call_id": "call_9",
        "name": "f",
        "arguments": '{"a": 1}',
        "status": "completed",
    }
    assert body["usage"] == {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 17,
    }
    cut = responses_answer(
        {"choices": [{"message": {"content": "tok"}, "finish_reason": "length"}]},
        shell=shell,
        request_id="req_abc",
        usage=Usage(1, 1),
    )
    assert (cut["status"], cut["incomplete_details"], cut["output"][0]["status"]) == (
        "incomplete",
        {"reason": "max_output_tokens"},
        "incomplete",
    )
