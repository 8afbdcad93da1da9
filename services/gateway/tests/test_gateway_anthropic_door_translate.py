"""The Anthropic door (POST /v1/messages and /v1/messages/count_tokens), its pure translations
both ways: an Anthropic request into OpenAI chat messages and fields (and what is refused, naming
the field), the input-token count, and an OpenAI answer back into an Anthropic message."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic_door_cases import WEATHER_TOOL

from tollgate.common.errors import InvalidRequest
from tollgate.gateway.anthropic_door.answer import anthropic_message
from tollgate.gateway.anthropic_door.request import estimated_input_tokens, parse_messages_request
from tollgate.gateway.anthropic_door.translate import openai_messages, openai_tool_choice
from tollgate.gateway.pricing.cost import Usage

# -- pure translations -------------------------------------------------------------------------


def test_blocks_system_and_tool_turns_become_openai_messages() -> None:
    messages = openai_messages(
        [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is here?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
                    {
                        "type": "document",
                        "title": "Notes",
                        "source": {"type": "text", "media_type": "text/plain", "data": "The notes."},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "sig"},
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Also this."},
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "rain", "is_error": False},
                ],
            },
        ],
    )
    assert messages == [
        {"role": "system", "content": "Be brief.\n\nBe kind."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is here?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
                {"type": "text", "text": "Notes\n\nThe notes."},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        # the tool result first: OpenAI wants it right after the assistant's tool call
        {"role": "tool", "tool_call_id": "toolu_1", "content": "rain"},
        {"role": "user", "content": "Also this."},
    ]


def test_a_tool_result_keeps_its_error_flag_in_text_and_its_images_go_to_the_user() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://x.test/chart.png"}}
    result = {
        "type": "tool_result",
        "tool_use_id": "t",
        "is_error": True,
        "content": [{"type": "text", "text": "boom"}, image],
    }
    assert openai_messages(None, [{"role": "user", "content": [result]}]) == [
        {"role": "tool", "tool_call_id": "t", "content": "Error: boom"},
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "https://x.test/chart.png"}}],
        },
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 5}, "model"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"model": "m", "messages": [], "max_tokens": 5}, "messages"),
        (
            {"model": "m", "messages": [{"role": "system", "content": "x"}], "max_tokens": 5},
            "messages.0.role",
        ),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages.0.content.0.type",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
                            }
                        ],
                    }
                ],
            },
            "messages.0.content.0.source",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/tiff", "data": "x"},
                            }
                        ],
                    }
                ],
            },
            "messages.0.content.0.source.media_type",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "temperature": 1.5,
            },
            "temperature",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "stop_sequences": "END",
            },
            "stop_sequences",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
            "tools.0.type",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"name": "f"}],
            },
            "tools.0.input_schema",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "tool_choice": {"type": "any"},
            },
            "tool_choice",
        ),
    ],
)
def test_what_cannot_be_honoured_is_refused_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_messages_request(body)
    assert refused.value.param == param
    assert refused.value.message.startswith(f"{param}: ")


def test_sampling_stop_sequences_metadata_and_top_k() -> None:
    parsed = parse_messages_request(
        {
            "model": "gpt-sim",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}],
            "system": "Be brief.",
            "stop_sequences": ["END"],
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 40,
            "metadata": {"user_id": "u-7"},
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "stream": True,
        }
    )
    assert (parsed.model, parsed.max_tokens, parsed.stream, parsed.stop_sequences) == (
        "gpt-sim",
        64,
        True,
        ["END"],
    )
    assert parsed.payload == {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "max_tokens": 64,
        "stop": ["END"],
        "temperature": 0.2,
        "top_p": 0.9,
        "user": "u-7",
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        (
            {"type": "any", "disable_parallel_tool_use": True},
            {"tool_choice": "required", "parallel_tool_calls": False},
        ),
        (
            {"type": "tool", "name": "get_weather"},
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        ),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    assert openai_tool_choice(choice, tools) == expected


def test_count_is_the_heuristic_with_tools_as_text() -> None:
    plain = parse_messages_request(
        {"model": "m", "messages": [{"role": "user", "content": "x" * 40}]}, counting=True
    )
    assert estimated_input_tokens(plain.payload) == 10 + 4
    tooled = parse_messages_request(
        {"model": "m", "messages": [{"role": "user", "content": "x" * 40}], "tools": [WEATHER_TOOL]},
        counting=True,
    )
    assert estimated_input_tokens(tooled.payload) > 14


def test_an_openai_answer_becomes_a_message_with_billed_usage() -> None:
    data = {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a": 1}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "g", "arguments": "not json"},
                        },
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    body = anthropic_message(
        data, request_id="req_abc", model="gpt-sim", usage=Usage(100, 7, 0, 30, 20, 0), stop_sequences=[]
    )
    assert body == {
        "id": "msg_abc",
        "type": "message",
        "role": "assistant",
        "model": "gpt-sim",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
            {"type": "tool_use", "id": "call_2", "name": "g", "input": {"_arguments": "not json"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        # Anthropic's input_tokens exclude the cache reads and writes
        "usage": {
            "input_tokens": 50,
            "output_tokens": 7,
            "cache_read_input_tokens": 30,
            "cache_creation_input_tokens": 20,
        },
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"finish_reason": "stop"}, ("end_turn", None)),
        ({"finish_reason": "length"}, ("max_tokens", None)),
        ({"finish_reason": "content_filter"}, ("refusal", None)),
        ({"finish_reason": "stop", "stop_reason": "END"}, ("stop_sequence", "END")),  # vLLM names it
        ({"finish_reason": "stop", "stop_reason": "OTHER"}, ("end_turn", None)),
    ],
)
def test_stop_reasons(choice: dict[str, Any], expected: tuple[str, str | None]) -> None:
    data = {"choices": [{"message": {"content": "x"}, **choice}]}
    body = anthropic_message(data, request_id="req_1", model="m", usage=Usage(1, 1), stop_sequences=["END"])
    assert (body["stop_reason"], body["stop_sequence"]) == expected
