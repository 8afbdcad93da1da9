"""The bedrock-converse provider's pure translations: OpenAI chat → Converse bodies, Converse
answers and event streams → OpenAI shapes, SigV4 signing, error mapping."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from tollgate.common.errors import InvalidRequest
from tollgate.gateway.catalog.service import parse_config
from tollgate.gateway.pricing.cost import Operation
from tollgate.gateway.providers import bedrock_converse as bc
from tollgate.gateway.providers.registry import provider_for
from tollgate.upstream_sim.converse import encode_message, event, exception

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
CREDS = {"region": "eu-west-1", "accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "secret"}


class Target:
    upstream_model = "anthropic.claude-3-sonnet-20240229-v1:0"
    api_key = orjson.dumps(CREDS).decode()
    chat_url = "https://bedrock-runtime.eu-west-1.amazonaws.com/chat/completions"
    api_base = "https://bedrock-runtime.eu-west-1.amazonaws.com"
    max_tokens_default = 512


def test_registry_names_the_provider() -> None:
    assert isinstance(provider_for("bedrock-converse"), bc.BedrockConverse)


def test_request_body_translates_messages_tools_and_inference() -> None:
    payload: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
            {"role": "user", "content": "thanks"},
        ],
        "max_tokens": 100,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": "END",
        "tools": [
            {
                "type": "function",
                "function": {"name": "f", "description": "d", "parameters": {"type": "object"}},
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
    }
    body = bc.request_body(payload, 512)
    assert body["system"] == [{"text": "be brief"}]
    assert body["messages"][0] == {
        "role": "user",
        "content": [{"text": "what is this?"}, {"image": {"format": "png", "source": {"bytes": PNG}}}],
    }
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [{"toolUse": {"toolUseId": "c1", "name": "f", "input": {"a": 1}}}],
    }
    # the tool result and the next user turn merge into one user turn
    assert body["messages"][2] == {
        "role": "user",
        "content": [{"toolResult": {"toolUseId": "c1", "content": [{"text": "42"}]}}, {"text": "thanks"}],
    }
    assert body["inferenceConfig"] == {
        "maxTokens": 100,
        "temperature": 0.5,
        "topP": 0.9,
        "stopSequences": ["END"],
    }
    assert body["toolConfig"] == {
        "tools": [
            {"toolSpec": {"name": "f", "description": "d", "inputSchema": {"json": {"type": "object"}}}}
        ],
        "toolChoice": {"tool": {"name": "f"}},
    }
    assert bc.request_body({**payload, "tool_choice": "required"}, 1)["toolConfig"]["toolChoice"] == {
        "any": {}
    }
    assert "toolConfig" not in bc.request_body({**payload, "tool_choice": "none"}, 1)


def test_http_image_urls_are_refused_naming_the_part() -> None:
    part = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with pytest.raises(InvalidRequest) as caught:
        bc.request_body({"messages": [{"role": "user", "content": [part]}]}, 1)
    assert caught.value.param == "messages[0].content[0].image_url.url"
    assert "data URL" in str(caught.value)


def test_request_is_signed_with_sigv4_for_bedrock() -> None:
    req = bc.BedrockConverse().request(
        Target(), Operation.CHAT, {"messages": [{"role": "user", "content": "hi"}]}, stream=True
    )
    assert req.url == Target.api_base + "/model/anthropic.claude-3-sonnet-20240229-v1%3A0/converse-stream"
    auth = req.headers["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/bedrock/aws4_request, SignedHeaders=" in auth and "Signature=" in auth
    assert "x-amz-date" in req.headers and "x-amz-security-token" not in req.headers
    assert orjson.loads(req.content)["inferenceConfig"] == {"maxTokens": 512}
    with_token = {**CREDS, "sessionToken": "tok"}
    headers = bc.sign("https://x/model/m/converse", b"{}", {}, with_token)
    assert headers["x-amz-security-token"] == "tok"


def test_answer_maps_stop_reason_tools_and_usage() -> None:
    data = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [{"toolUse": {"toolUseId": "t1", "name": "f", "input": {"x": 1}}}],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 5, "outputTokens": 3, "cacheReadInputTokens": 2, "cacheWriteInputTokens": 4},
    }
    answer = bc.chat_completion(data)
    [choice] = answer["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [
        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}
    ]
    assert answer["usage"]["prompt_tokens"] == 11
    assert answer["usage"]["prompt_tokens_details"] == {"cached_tokens": 2, "cache_write_tokens": 4}
    for reason, finish in (("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length")):
        text = {"output": {"message": {"content": [{"text": "hi"}]}}, "stopReason": reason}
        assert bc.chat_completion(text)["choices"][0]["finish_reason"] == finish
    with pytest.raises(ValueError):
        bc.chat_completion({"message": "nope"})


@pytest.mark.parametrize(
    ("status", "error_type", "kind"),
    [
        (400, "ValidationException", "invalid_request_error"),
        (429, "ThrottlingException", "rate_limit_error"),
        (403, "AccessDeniedException", "permission_error"),
        (503, "ServiceUnavailableException", "api_error"),
    ],
)
def test_errors_map_to_openai_envelope(status: int, error_type: str, kind: str) -> None:
    body = orjson.dumps({"message": "nope", "__type": f"com.amazon.bedrock#{error_type}"})
    error = orjson.loads(bc.BedrockConverse().error_body(status, body))["error"]
    assert (error["message"], error["type"]) == ("nope", kind)
    assert bc.BedrockConverse().error_message(status, b"{}").endswith(f"(HTTP {status}).")


class Chunks:
    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts

    async def aiter_bytes(self):  # type: ignore[no-untyped-def]
        for part in self.parts:
            yield part

    async def aclose(self) -> None:
        pass


async def _sse(parts: list[bytes]) -> list[str]:
    stream = bc.BedrockConverse().stream(Operation.CHAT, Chunks(parts))
    out = b"".join([chunk async for chunk in stream.aiter_bytes()])
    return [e[6:] for e in out.decode().split("\n\n") if e]


async def test_event_stream_decodes_to_openai_chunks_split_anywhere() -> None:
    raw = b"".join(
        [
            event("messageStart", {"role": "assistant"}),
            event(
                "contentBlockStart",
                {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t", "name": "f"}}},
            ),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"a"'}}}),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": ":1}"}}}),
            event("contentBlockStop", {"contentBlockIndex": 0}),
            event("messageStop", {"stopReason": "tool_use"}),
            event("metadata", {"usage": {"inputTokens": 3, "outputTokens": 2}}),
        ]
    )
    parts = [raw[i : i + 7] for i in range(0, len(raw), 7)]  # frames cut mid-prelude and mid-payload
    events = await _sse(parts)
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert calls[0]["function"]["name"] == "f"
    assert "".join(c["function"]["arguments"] for c in calls) == '{"a":1}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["total_tokens"] == 5


async def test_event_stream_exception_ends_with_an_error() -> None:
    raw = event("messageStart", {"role": "assistant"}) + exception("ThrottlingException", "slow down")
    events = await _sse([raw])
    error = orjson.loads(events[-1])["error"]
    assert error["message"] == "slow down" and error["type"] == "rate_limit_error"


def test_simulator_frames_carry_valid_crcs() -> None:
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    buffer.add_data(encode_message({":event-type": "x"}, b"{}"))
    [message] = list(buffer)
    assert message.headers == {":event-type": "x"} and message.payload == b"{}"


def test_bedrock_gateway_config_is_accepted_and_secrets_go_to_the_encrypted_key() -> None:
    seed = parse_config('{"modelId": "somevalue"}', "m", 4096, "bedrock-converse")
    assert (seed.base_url, seed.upstream_model, seed.api_key) == (
        "https://bedrock-runtime.us-east-1.amazonaws.com",
        "somevalue",
        None,
    )
    config = parse_config(
        {"modelId": "x", "endpoint": "http://sim:8000/", **CREDS, "sessionToken": "t"},
        "m",
        4096,
        "bedrock-converse",
    )
    assert config.base_url == "http://sim:8000"
    assert config.api_key_given and orjson.loads(config.api_key or "")["secretAccessKey"] == "secret"
    assert "secretAccessKey" not in config.extra and "sessionToken" not in config.extra
