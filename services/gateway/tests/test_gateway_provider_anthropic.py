"""The anthropic provider's translations, pure: OpenAI chat → Messages, Messages → OpenAI (answers,
streams, errors), and the registry that picks a provider by a model's provider name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from tollgate.common.errors import InvalidRequest
from tollgate.gateway.catalog.models import Model
from tollgate.gateway.catalog.secrets import SecretBox
from tollgate.gateway.catalog.service import SUPPORTED_PROVIDERS
from tollgate.gateway.catalog.snapshot import CatalogSnapshot, UpstreamPool
from tollgate.gateway.completions.tokens import reported_usage
from tollgate.gateway.pricing.cost import Operation, Usage
from tollgate.gateway.providers.anthropic import (
    AnthropicChatStream,
    StreamTranslator,
    chat_completion,
    openai_error,
    request_body,
)
from tollgate.gateway.providers.registry import ANTHROPIC, OPENAI_COMPATIBLE, provider_for

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@dataclass(frozen=True)
class Target:
    upstream_model: str = "claude-sonnet"
    api_key: str | None = "sk-ant"
    chat_url: str = "https://api.anthropic.test/v1/chat/completions"
    api_base: str = "https://api.anthropic.test/v1"
    max_tokens_default: int = 1024


def translate(**payload: Any) -> dict[str, Any]:
    return request_body(payload, "claude-sonnet", 1024, stream=False)


# -- the registry ----------------------------------------------------------------------------------


def test_registry_maps_names_and_the_catalog_accepts_anthropic() -> None:
    assert provider_for("anthropic") is ANTHROPIC
    assert provider_for("openai-compatible") is provider_for("openai") is OPENAI_COMPATIBLE
    assert provider_for("something-older") is OPENAI_COMPATIBLE
    assert {"anthropic", "openai", "openai-compatible"} <= SUPPORTED_PROVIDERS
    assert OPENAI_COMPATIBLE.lean and ANTHROPIC.lean  # both speak plain JSON over HTTP/1.1
    assert ANTHROPIC.supports(Operation.CHAT)
    assert not any(
        ANTHROPIC.supports(op) for op in (Operation.COMPLETION, Operation.EMBEDDING, Operation.IMAGE)
    )


async def test_plain_http_openai_compatible_and_anthropic_models_get_the_lean_client() -> None:
    pool = UpstreamPool(lambda _: httpx.AsyncClient())
    snapshot = CatalogSnapshot(None, SecretBox("s"), pool)  # type: ignore[arg-type]

    def row(provider: str) -> Model:
        now = datetime.now(UTC)
        return Model(
            id=1,
            name=provider,
            provider=provider,
            base_url="http://upstream:8000/v1",
            upstream_model="m",
            price_in_micros=0,
            price_out_micros=0,
            price_request_micros=0,
            price_image_micros=0,
            group_id=0,
            max_tokens_default=4096,
            created_at=now,
        )

    openai_entry, anthropic_entry = (
        snapshot._entry(row("openai-compatible")),
        snapshot._entry(row("anthropic")),
    )
    assert openai_entry is not None and openai_entry.lean is not None
    assert anthropic_entry is not None and anthropic_entry.lean is openai_entry.lean  # one pool per URL
    assert anthropic_entry.api_base == "http://upstream:8000/v1"
    await pool.close()


def test_openai_compatible_request_is_todays() -> None:
    payload: dict[str, Any] = {
        "model": "public",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    url, content, headers = OPENAI_COMPATIBLE.request(Target(), Operation.CHAT, payload, stream=True)
    assert url == "https://api.anthropic.test/v1/chat/completions"
    assert orjson.loads(content) == {
        **payload,
        "model": "claude-sonnet",
        "stream_options": {"include_usage": True},
    }
    assert headers == {"content-type": "application/json", "authorization": "Bearer sk-ant"}
    url, _, _ = OPENAI_COMPATIBLE.request(Target(), Operation.EMBEDDING, {"input": "x"}, stream=False)
    assert url == "https://api.anthropic.test/v1/embeddings"


# -- OpenAI chat → Messages --------------------------------------------------------------------------


def test_request_url_headers_and_max_tokens() -> None:
    payload = {"model": "public", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    url, content, headers = ANTHROPIC.request(Target(), Operation.CHAT, payload, stream=True)
    assert url == "https://api.anthropic.test/v1/messages"
    assert headers == {
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "x-api-key": "sk-ant",
    }
    assert orjson.loads(content) == {
        "model": "claude-sonnet",
        "max_tokens": 1024,  # required by Anthropic: the model's default when the request has none
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "stream": True,
    }
    _, _, headers = ANTHROPIC.request(Target(api_key=None), Operation.CHAT, payload, stream=False)
    assert "x-api-key" not in headers
    assert translate(messages=[{"role": "user", "content": "x"}], max_tokens=7)["max_tokens"] == 7
    assert translate(messages=[{"role": "user", "content": "x"}], max_completion_tokens=9)["max_tokens"] == 9


def test_system_messages_and_sampling_fields() -> None:
    body = translate(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
            {"role": "user", "content": "Hello"},
        ],
        temperature=0.3,
        top_p=0.9,
        stop="END",
        user="u-1",
        presence_penalty=1.0,  # no Anthropic counterpart: dropped
        top_k=5,  # Anthropic's own: kept
    )
    assert body["system"] == "Be brief.\n\nUse French."
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.3, 0.9, 5)
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u-1"}
    assert "presence_penalty" not in body
    assert translate(messages=[{"role": "user", "content": "x"}], stop=["a", "b"])["stop_sequences"] == [
        "a",
        "b",
    ]


def test_cache_control_on_a_system_part_keeps_blocks() -> None:
    part = {"type": "text", "text": "Long context.", "cache_control": {"type": "ephemeral"}}
    body = translate(messages=[{"role": "system", "content": [part]}, {"role": "user", "content": "q"}])
    assert body["system"] == [part]


def test_images_data_urls_and_http_urls() -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
    ]
    [turn] = translate(messages=[{"role": "user", "content": content}])["messages"]
    assert turn["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    for bad in ("data:text/plain,hello", "ftp://example.com/x.png"):
        with pytest.raises(InvalidRequest) as refused:
            translate(
                messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": bad}}]}]
            )
        assert refused.value.param == "messages[0].content[0].image_url.url"
    with pytest.raises(InvalidRequest):
        translate(messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}])


def test_tools_tool_calls_and_tool_results() -> None:
    body = translate(
        messages=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "rainy"}]},
            {"role": "user", "content": "Thanks; and tomorrow?"},
        ],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        parallel_tool_calls=False,
    )
    assert body["tools"] == [
        {
            "name": "get_weather",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
            "description": "The weather in a city.",
        }
    ]
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    _user, assistant, results = body["messages"]
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Rome"}},
        ],
    }
    # consecutive tool messages and the user turn after them: one user turn, the results first
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "rainy"}]},
            {"type": "text", "text": "Thanks; and tomorrow?"},
        ],
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    body = translate(messages=[{"role": "user", "content": "x"}], tools=[WEATHER_TOOL], tool_choice=choice)
    assert body["tool_choice"] == expected


def test_what_anthropic_cannot_take_is_a_400() -> None:
    with pytest.raises(InvalidRequest) as refused:
        translate(messages=[{"role": "user", "content": "x"}], n=2)
    assert refused.value.param == "n"
    with pytest.raises(InvalidRequest):
        translate(messages=[{"role": "system", "content": "only a system prompt"}])
    with pytest.raises(InvalidRequest):
        translate(messages=[{"role": "user", "content": "x"}], tools=[{"type": "web_search"}])
    bad_call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "not json"}}
    with pytest.raises(InvalidRequest) as refused:
        translate(
            messages=[{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [bad_call]}]
        )
    assert refused.value.param == "messages[1].tool_calls[0].function.arguments"
    with pytest.raises(InvalidRequest):
        translate(messages=[{"role": "tool", "content": "no id"}])


# -- Messages answer → OpenAI ------------------------------------------------------------------------

ANTHROPIC_USAGE = {
    "input_tokens": 10,
    "cache_read_input_tokens": 100,
    "cache_creation_input_tokens": 20,
    "output_tokens": 7,
}


def test_answer_with_text_tool_use_and_usage() -> None:
    answer = chat_completion(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": ANTHROPIC_USAGE,
        }
    )
    assert answer["object"] == "chat.completion"
    assert answer["id"] == "msg_1"
    [choice] = answer["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
        "reasoning_content": "hmm",
    }
    assert answer["usage"]["prompt_tokens"] == 130  # fresh + cache reads + cache writes
    assert answer["usage"]["completion_tokens"] == 7
    # pricing reads the token classes from the translated usage
    assert reported_usage(answer["usage"]) == Usage(130, 7, 0, 100, 20, 0)
    assert reported_usage(answer["usage"]) == reported_usage(ANTHROPIC_USAGE)


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls")],
)
def test_stop_reasons(stop_reason: str, finish: str) -> None:
    message = {"type": "message", "content": [{"type": "text", "text": "x"}], "stop_reason": stop_reason}
    assert chat_completion(message)["choices"][0]["finish_reason"] == finish


def test_only_tool_calls_leave_content_null_and_a_non_message_is_refused() -> None:
    message = {"type": "message", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}
    reply = chat_completion(message)["choices"][0]["message"]
    assert reply["content"] is None and reply["tool_calls"][0]["function"]["arguments"] == "{}"
    assert "usage" not in chat_completion(message)  # none reported: the gateway counts itself
    with pytest.raises(ValueError):
        chat_completion({"type": "error", "error": {}})


def test_errors_in_openais_envelope() -> None:
    body = orjson.dumps({"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down."}})
    assert openai_error(429, body) == {
        "error": {
            "message": "Slow down.",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    body = orjson.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": "Bad."}})
    assert orjson.loads(ANTHROPIC.error_body(400, body)) == {
        "error": {
            "message": "Bad.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_request_error",
        }
    }
    assert ANTHROPIC.error_message(400, body) == "Bad."
    assert (
        openai_error(413, b"<html>")["error"]["message"]
        == "The upstream model refused the request (HTTP 413)."
    )


# -- Messages stream → OpenAI chunks ----------------------------------------------------------------


def sse(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **data}) + b"\n\n"


TOOL_STREAM = [
    sse(
        "message_start",
        {
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet",
                "content": [],
                "usage": {**ANTHROPIC_USAGE, "output_tokens": 1},
            }
        },
    ),
    sse("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    sse("ping", {}),
    sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Let me"}}),
    sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": " check."}}),
    sse("content_block_stop", {"index": 0}),
    sse(
        "content_block_start",
        {
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
        },
    ),
    sse("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
    sse(
        "content_block_delta",
        {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city": '}},
    ),
    sse(
        "content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'}}
    ),
    sse("content_block_stop", {"index": 1}),
    sse(
        "message_delta",
        {"delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 42}},
    ),
    sse("message_stop", {}),
]


class Chunks(httpx.AsyncByteStream):
    def __init__(self, parts: list[bytes]) -> None:
        self._parts = parts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self._parts:
            yield part


async def translated(parts: list[bytes]) -> list[Any]:
    stream = AnthropicChatStream(httpx.Response(200, stream=Chunks(parts)))
    out = b"".join([piece async for piece in stream.aiter_bytes()])
    await stream.aclose()
    events = [e.removeprefix(b"data: ") for e in out.split(b"\n\n") if e]
    return [e.decode() if e == b"[DONE]" else orjson.loads(e) for e in events]


async def test_stream_of_text_and_a_tool_call() -> None:
    chunks = await translated(TOOL_STREAM)
    assert chunks[-1] == "[DONE]"
    usage_chunk = chunks[-2]
    assert usage_chunk["choices"] == [] and usage_chunk["object"] == "chat.completion.chunk"
    assert reported_usage(usage_chunk["usage"]) == Usage(130, 42, 0, 100, 20, 0)
    deltas = [c["choices"][0]["delta"] for c in chunks[:-2]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("content", "") for d in deltas) == "Let me check."
    calls = [call for d in deltas for call in d.get("tool_calls", [])]
    assert calls[0] == {
        "index": 0,
        "id": "toolu_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert "".join(c["function"]["arguments"] for c in calls) == '{"city": "Paris"}'
    assert all(c["index"] == 0 for c in calls)  # the first tool call, though the second content block
    finishes = [c["choices"][0]["finish_reason"] for c in chunks[:-2]]
    assert finishes[-1] == "tool_calls" and set(finishes[:-1]) == {None}
    assert {c["id"] for c in chunks[:-1]} == {"msg_1"}


async def test_stream_events_split_anywhere_and_crlf() -> None:
    whole = b"".join(TOOL_STREAM).replace(b"\n", b"\r\n")
    pieces = [whole[i : i + 7] for i in range(0, len(whole), 7)]
    assert await translated(pieces) == await translated(TOOL_STREAM)


async def test_stream_error_event_becomes_an_openai_error_chunk() -> None:
    parts = [
        TOOL_STREAM[0],
        sse("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        sse("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ]
    chunks = await translated(parts)
    assert chunks[-1] == {
        "error": {"message": "Overloaded", "type": "api_error", "param": None, "code": "overloaded_error"}
    }
    assert "[DONE]" not in chunks  # no message_stop: the relay ends the stream itself


def test_translator_ignores_pings_and_unknown_events() -> None:
    translator = StreamTranslator()
    assert translator.feed({"type": "ping"}) == []
    assert translator.feed({"type": "content_block_stop", "index": 0}) == []
    assert translator.feed({"type": "something_new"}) == []
    assert translator.feed({"type": "message_stop"}) == []  # no usage seen: no usage chunk
