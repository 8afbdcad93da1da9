"""The simulator's Bedrock Converse dialect: SigV4 shape check, answers, event-stream framing, cues."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import httpx
import orjson
import pytest

from tollgate.upstream_sim.app import create_app
from tollgate.upstream_sim.converse import encode_message

AUTH = {
    "authorization": "AWS4-HMAC-SHA256 Credential=AKIDSIM/20260101/eu-west-1/bedrock/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date, Signature=" + "a" * 64,
    "x-amz-date": "20260101T000000Z",
}
WEATHER = {
    "toolSpec": {
        "name": "get_weather",
        "inputSchema": {
            "json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        },
    }
}


@pytest.fixture
def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app()), base_url="http://sim")


def body(text: str = "hello there world", **extra: Any) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": [{"text": text}]}],
        "inferenceConfig": {"maxTokens": 4},
        **extra,
    }


def decode(raw: bytes) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """A minimal event-stream reader (string headers only), checking both CRCs."""
    out = []
    while raw:
        total, header_len, prelude_crc = struct.unpack(">III", raw[:12])
        assert prelude_crc == zlib.crc32(raw[:8])
        message, raw = raw[:total], raw[total:]
        assert struct.unpack(">I", message[-4:])[0] == zlib.crc32(message[:-4])
        headers, cursor = {}, 12
        while cursor < 12 + header_len:
            name_len = message[cursor]
            name = message[cursor + 1 : cursor + 1 + name_len].decode()
            cursor += 1 + name_len
            assert message[cursor] == 7  # a string header
            (value_len,) = struct.unpack(">H", message[cursor + 1 : cursor + 3])
            headers[name] = message[cursor + 3 : cursor + 3 + value_len].decode()
            cursor += 3 + value_len
        out.append((headers, orjson.loads(message[12 + header_len : -4])))
    return out


async def test_unsigned_or_malformed_authorization_is_403(client: httpx.AsyncClient) -> None:
    for headers in (
        {},
        {**AUTH, "authorization": "Bearer x"},
        {**AUTH, "authorization": AUTH["authorization"].replace("bedrock", "s3")},
    ):
        r = await client.post("/model/m/converse", json=body(), headers=headers)
        assert r.status_code == 403
        assert r.headers["x-amzn-errortype"].startswith("UnrecognizedClientException")
        assert "message" in r.json()


async def test_converse_answers_with_usage(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/model/anthropic.claude%3A0/converse", json=body(system=[{"text": "be kind"}]), headers=AUTH
    )
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["output"]["message"]["content"] == [{"text": "tok0 tok1 tok2 tok3"}]
    assert data["stopReason"] == "max_tokens"
    assert data["usage"] == {"inputTokens": 5, "outputTokens": 4, "totalTokens": 9}
    assert (await client.get("/_sim/stats")).json()["by_model"] == {"anthropic.claude:0": 1}


async def test_documents_and_images_count(client: httpx.AsyncClient) -> None:
    content = [
        {"text": "read"},
        {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
        {"document": {"name": "notes", "format": "txt", "source": {"bytes": "aGk="}}},
    ]
    r = await client.post(
        "/model/m/converse", json={"messages": [{"role": "user", "content": content}]}, headers=AUTH
    )
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["inputTokens"] == 1 + 8 + 32 + 1
    bad = [{"document": {"name": "x", "format": "pdf", "source": {}}}]
    r = await client.post(
        "/model/m/converse", json={"messages": [{"role": "user", "content": bad}]}, headers=AUTH
    )
    assert r.status_code == 400 and r.headers["x-amzn-errortype"].startswith("ValidationException")


async def test_tools_and_cache_cues(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/model/m/converse", json=body("call get_weather", toolConfig={"tools": [WEATHER]}), headers=AUTH
    )
    data = r.json()
    assert data["stopReason"] == "tool_use"
    assert data["output"]["message"]["content"][0]["toolUse"]["input"] == {"city": "sim"}
    r = await client.post("/model/m-cachewrite/converse", json=body("a b c d e f g h"), headers=AUTH)
    usage = r.json()["usage"]
    assert (usage["inputTokens"], usage["cacheReadInputTokens"], usage["cacheWriteInputTokens"]) == (2, 2, 4)


@pytest.mark.parametrize(
    ("model", "status", "error_type"),
    [
        ("m-ratelimited", 429, "ThrottlingException"),
        ("m-notready", 429, "ModelNotReadyException"),
        ("m-unavailable", 503, "ServiceUnavailableException"),
        ("m-error", 500, "InternalServerException"),
    ],
)
async def test_error_cues(client: httpx.AsyncClient, model: str, status: int, error_type: str) -> None:
    r = await client.post(f"/model/{model}/converse-stream", json=body(), headers=AUTH)
    assert r.status_code == status
    assert r.headers["x-amzn-errortype"].split(":")[0] == error_type


async def test_converse_stream_is_event_stream_framed(client: httpx.AsyncClient) -> None:
    r = await client.post("/model/m/converse-stream", json=body(), headers=AUTH)
    assert r.headers["content-type"] == "application/vnd.amazon.eventstream"
    events = decode(r.content)
    kinds = [h[":event-type"] for h, _ in events]
    assert kinds == ["messageStart"] + ["contentBlockDelta"] * 4 + [
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    assert all(h[":message-type"] == "event" and h[":content-type"] == "application/json" for h, _ in events)
    assert events[-1][1]["usage"]["outputTokens"] == 4
    r = await client.post("/model/m-streamfail/converse-stream", json=body(), headers=AUTH)
    last_headers, last = decode(r.content)[-1]
    assert last_headers[":message-type"] == "exception" and "message" in last


def test_encoder_framing_by_hand() -> None:
    raw = encode_message({":event-type": "x"}, b"{}")
    total, header_len, prelude_crc = struct.unpack(">III", raw[:12])
    assert total == len(raw) and prelude_crc == zlib.crc32(raw[:8])
    assert header_len == 1 + 11 + 1 + 2 + 1
    assert struct.unpack(">I", raw[-4:])[0] == zlib.crc32(raw[:-4])
