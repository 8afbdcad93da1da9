"""Rich content through the OpenAI-compatible provider, end to end with the official `openai` SDK:
tool definitions, `tool_choice`, tool calls in answers and as streamed deltas, tool results sent
back, `response_format` with a JSON schema, images as data and http URLs, and the Bedrock-style
gateway's `type: doc` parts extracted to text — each answered in OpenAI's shape and billed exactly for
what it used.

The simulator answers tools and structured output from the request's own schemas, and its "echo"
models answer with the content parts that reached them (tools/upstream-sim, rich.py)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tollgate.devstack.testing import PRICE_IN, PRICE_OUT, Account, balance_micros, register_model, wait_until

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}
CLOCK: Any = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
TITLE_SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "score": {"type": "number"}},
    "required": ["title", "score"],
    "additionalProperties": False,
}
PNG_DATA_URL = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


@pytest.fixture(scope="module")
def models(admin: httpx.Client, sim_url: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    names = {
        "plain": f"rich-{suffix}",
        "echo": f"rich-echo-{suffix}",
        "anthropic": f"rich-claude-{suffix}",
        "bedrock-converse": f"rich-bedrock-{suffix}",
    }
    register_model(admin, names["plain"], "sim-model", sim_url)
    register_model(admin, names["echo"], "sim-echo", sim_url)
    # the same requests through the other dialects' translations (the simulator speaks them too)
    configs = {
        "anthropic": {"base_url": f"{sim_url}/v1", "model": "claude-sim", "api_key": "sk-ant-sim"},
        "bedrock-converse": {
            "modelId": "anthropic.claude-sim",
            "region": "eu-west-1",
            "accessKeyId": "AKIDSIM",
            "secretAccessKey": "sim-secret-key",
            "endpoint": sim_url,
        },
    }
    for provider, config in configs.items():
        body = {"name": names[provider], "provider": provider, "config": json.dumps(config)}
        saved = admin.post("/admin/model/save", json={**body, "price_in": PRICE_IN, "price_out": PRICE_OUT})
        assert saved.status_code == 200, saved.text
    return names


def cost_of(usage: Any) -> int:
    """register_model's prices are per 1M tokens, so micro-credits per token."""
    return int(usage.prompt_tokens * PRICE_IN + usage.completion_tokens * PRICE_OUT)


def charged(gateway_url: str, account: Account, before: int, expected: int) -> None:
    assert expected > 0
    wait_until(
        lambda: balance_micros(gateway_url, account.key) == before - expected or None, what="the charge"
    )


def test_a_tool_call_and_its_result_round_trip(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    models: dict[str, str],
    gateway_url: str,
) -> None:
    account = new_account(credits=1)
    client = client_for(account.key)
    before = balance_micros(gateway_url, account.key)
    question = [{"role": "user", "content": "What is get_weather in Paris for two days?"}]
    first = client.chat.completions.create(model=models["plain"], messages=question, tools=[CLOCK, WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "sim", "days": 1}
    # the tool's result goes back with the assistant's call, as the SDK's docs show
    followup = [
        *question,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'},
    ]
    second = client.chat.completions.create(
        model=models["plain"], messages=followup, tools=[WEATHER], tool_choice="none"
    )
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content and not second.choices[0].message.tool_calls
    assert first.usage is not None and second.usage is not None
    charged(gateway_url, account, before, cost_of(first.usage) + cost_of(second.usage))


def test_tool_choice_names_the_function(
    new_account: Callable[..., Account], client_for: Callable[[str], OpenAI], models: dict[str, str]
) -> None:
    client = client_for(new_account(credits=1).key)
    reply = client.chat.completions.create(
        model=models["plain"],
        messages=[{"role": "user", "content": "hello"}],
        tools=[WEATHER, CLOCK],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert [c.function.name for c in reply.choices[0].message.tool_calls or []] == ["get_time"]


def test_a_streamed_tool_call_arrives_as_deltas_and_is_billed(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    models: dict[str, str],
    gateway_url: str,
) -> None:
    account = new_account(credits=1)
    before = balance_micros(gateway_url, account.key)
    stream = client_for(account.key).chat.completions.create(
        model=models["plain"],
        messages=[{"role": "user", "content": "call get_weather"}],
        tools=[WEATHER],
        tool_choice="required",
        stream=True,
        stream_options={"include_usage": True},
    )
    names, pieces, finish, usage = [], [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                if delta.function and delta.function.name:
                    names.append(delta.function.name)
                if delta.function and delta.function.arguments:
                    pieces.append(delta.function.arguments)
    assert names == ["get_weather"] and finish == "tool_calls"
    assert len(pieces) > 1 and json.loads("".join(pieces)) == {"city": "sim", "days": 1}
    assert usage is not None
    charged(gateway_url, account, before, cost_of(usage))


@pytest.mark.parametrize("provider", ["plain", "anthropic", "bedrock-converse"])
def test_response_format_json_schema_streamed_and_not(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    models: dict[str, str],
    gateway_url: str,
    provider: str,
) -> None:
    """OpenAI-compatible providers take response_format as is; Anthropic's and Bedrock's dialects
    have no JSON mode, so the gateway asks for a forced tool call and answers with its input."""
    account = new_account(credits=1)
    client = client_for(account.key)
    before = balance_micros(gateway_url, account.key)
    response_format: Any = {
        "type": "json_schema",
        "json_schema": {"name": "title", "schema": TITLE_SCHEMA, "strict": True},
    }
    messages: Any = [{"role": "user", "content": "a title for a cat story"}]
    reply = client.chat.completions.create(
        model=models[provider], messages=messages, response_format=response_format
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    assert_titled(json.loads(choice.message.content or ""))
    stream = client.chat.completions.create(
        model=models[provider],
        messages=messages,
        response_format=response_format,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
    assert_titled(json.loads("".join(c.choices[0].delta.content or "" for c in chunks if c.choices)))
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    usage = chunks[-1].usage
    assert reply.usage is not None and usage is not None
    charged(gateway_url, account, before, cost_of(reply.usage) + cost_of(usage))


def assert_titled(answer: Any) -> None:
    """What TITLE_SCHEMA asks for: both required properties, with their types."""
    assert set(answer) == {"title", "score"}
    assert isinstance(answer["title"], str) and isinstance(answer["score"], int | float)


def test_images_as_data_and_http_urls_reach_the_provider(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    models: dict[str, str],
    gateway_url: str,
) -> None:
    account = new_account(credits=1)
    before = balance_micros(gateway_url, account.key)
    content: Any = [
        {"type": "text", "text": "what is in these?"},
        {"type": "image_url", "image_url": {"url": PNG_DATA_URL, "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    reply = client_for(account.key).chat.completions.create(
        model=models["echo"], messages=[{"role": "user", "content": content}]
    )
    assert (
        reply.choices[0].message.content == "parts: text=1 image_url=2 (data=1, http=1) file=0 input_audio=0"
    )
    assert reply.usage is not None
    charged(gateway_url, account, before, cost_of(reply.usage))


def test_a_bedrock_gateway_doc_part_reaches_an_openai_compatible_provider_as_text(
    new_account: Callable[..., Account], models: dict[str, str], gateway_url: str
) -> None:
    account = new_account(credits=1)
    text = b"Quarterly report: revenue up."
    doc = {
        "name": "report",
        "format": "txt",
        "size": len(text),
        "source": {"bytes": {str(i): b for i, b in enumerate(text)}},
    }
    body = {
        "model": models["echo"],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "summarise"}, {"type": "doc", "doc": doc}]}
        ],
    }
    reply = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {account.key}"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    # no doc or file part went up: the document became a text part beside the caller's
    assert (
        reply.json()["choices"][0]["message"]["content"]
        == "parts: text=2 image_url=0 (data=0, http=0) file=0 input_audio=0"
    )
