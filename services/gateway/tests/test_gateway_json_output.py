"""`response_format` through dialects without a JSON mode (Anthropic's Messages, Bedrock's Converse):
asked for as a forced call of a tool whose input schema is the response's, and turned back into the
message's content, streamed and not (providers/content_blocks.json_output_tool, openai_chat)."""

from __future__ import annotations

from typing import Any

import orjson

from tollgate.gateway.providers import (
    anthropic_answer,
    anthropic_request,
    bedrock_converse_answer,
    bedrock_converse_request,
)
from tollgate.gateway.providers.anthropic_stream import StreamTranslator as MessagesStream
from tollgate.gateway.providers.bedrock_converse_stream import StreamTranslator as ConverseStream
from tollgate.gateway.providers.content_blocks import JSON_TOOL

SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
STRUCTURED = {"type": "json_schema", "json_schema": {"name": "title", "schema": SCHEMA, "strict": True}}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
MESSAGES = [{"role": "user", "content": "a title please"}]


def messages_body(**extra: Any) -> dict[str, Any]:
    return anthropic_request.request_body({"messages": MESSAGES, **extra}, "claude-x", 64, stream=False)


def converse_body(**extra: Any) -> dict[str, Any]:
    return bedrock_converse_request.request_body({"messages": MESSAGES, **extra}, 64)


def test_messages_request_forces_the_output_tool_with_the_schema() -> None:
    body = messages_body(response_format=STRUCTURED)
    (tool,) = body["tools"]
    assert tool["name"] == JSON_TOOL and tool["input_schema"] == SCHEMA
    assert "title" in tool["description"]
    assert body["tool_choice"] == {"type": "tool", "name": JSON_TOOL}
    assert "response_format" not in body
    plain = messages_body(response_format={"type": "json_object"})
    assert plain["tools"][0]["input_schema"] == {"type": "object"}
    assert "tools" not in messages_body(response_format={"type": "text"})


def test_with_the_callers_tools_the_output_tool_is_offered_not_forced() -> None:
    body = messages_body(response_format=STRUCTURED, tools=[WEATHER])
    assert [t["name"] for t in body["tools"]] == ["get_weather", JSON_TOOL]
    assert "tool_choice" not in body
    converse = converse_body(response_format=STRUCTURED, tools=[WEATHER])
    assert [t["toolSpec"]["name"] for t in converse["toolConfig"]["tools"]] == ["get_weather", JSON_TOOL]
    assert "toolChoice" not in converse["toolConfig"]


def test_converse_request_forces_the_output_tool_with_the_schema() -> None:
    config = converse_body(response_format=STRUCTURED)["toolConfig"]
    (tool,) = config["tools"]
    assert tool["toolSpec"]["name"] == JSON_TOOL and tool["toolSpec"]["inputSchema"] == {"json": SCHEMA}
    assert config["toolChoice"] == {"tool": {"name": JSON_TOOL}}


def test_a_messages_answer_calling_the_output_tool_is_content() -> None:
    answer = anthropic_answer.chat_completion(
        {
            "type": "message",
            "id": "msg_1",
            "model": "claude-x",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": JSON_TOOL, "input": {"title": "Cats"}}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 5, "output_tokens": 3},
        }
    )
    choice = answer["choices"][0]
    assert orjson.loads(choice["message"]["content"]) == {"title": "Cats"}
    assert "tool_calls" not in choice["message"] and choice["finish_reason"] == "stop"


def test_a_converse_answer_keeps_real_tool_calls_beside_the_output() -> None:
    answer = bedrock_converse_answer.chat_completion(
        {
            "output": {
                "message": {
                    "role": "assistant",
                    "content": [
                        {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {}}},
                        {"toolUse": {"toolUseId": "t2", "name": JSON_TOOL, "input": {"title": "Cats"}}},
                    ],
                }
            },
            "stopReason": "tool_use",
            "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8},
        }
    )
    message = answer["choices"][0]["message"]
    assert [c["function"]["name"] for c in message["tool_calls"]] == ["get_weather"]
    assert orjson.loads(message["content"]) == {"title": "Cats"}
    assert answer["choices"][0]["finish_reason"] == "tool_calls"


def deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks if c.get("choices")]


def test_a_messages_stream_of_the_output_tool_streams_content() -> None:
    stream = MessagesStream()
    chunks: list[dict[str, Any]] = []
    for event in [
        {
            "type": "message_start",
            "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 5}},
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "t", "name": JSON_TOOL},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"title"'},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": ': "Cats"}'},
        },
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}},
    ]:
        chunks += stream.feed(event)
    assert not any("tool_calls" in d for d in deltas(chunks))
    assert orjson.loads("".join(d.get("content") or "" for d in deltas(chunks))) == {"title": "Cats"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_a_converse_stream_of_the_output_tool_streams_content() -> None:
    stream = ConverseStream()
    chunks: list[dict[str, Any]] = []
    for kind, event in [
        ("messageStart", {"role": "assistant"}),
        (
            "contentBlockStart",
            {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t", "name": JSON_TOOL}}},
        ),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"title": "Cats"}'}}}),
        ("messageStop", {"stopReason": "tool_use"}),
    ]:
        chunks += stream.feed(kind, event)
    assert orjson.loads("".join(d.get("content") or "" for d in deltas(chunks))) == {"title": "Cats"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
