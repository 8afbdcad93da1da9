"""The anthropic provider end to end: a catalog model whose upstream speaks Anthropic's Messages API
(the real stack's simulator, /v1/messages), registered through /admin/model/save and called with the
official `openai` SDK, streamed and not; the balance falls by exactly the cost, cached tokens priced
at the cached price."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account, balance_micros, ledger_usage, wait_until

# Prices in credits per 1M tokens, so micro-credits per token: exact costs.
PRICES = {"price_in": 2, "price_out": 6, "price_cached_in": 1, "price_cache_write": 3}
EIGHT_WORDS = "one two three four five six seven eight"
# The simulator's "cachewrite" model reads a quarter of the 8-token prompt from the cache and writes
# half of it: 2 fresh at 2, 2 cached at 1, 4 written at 3; 4 output tokens at 6.
CACHED_COST = 2 * 2 + 2 * 1 + 4 * 3 + 4 * 6
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def register_anthropic(admin: httpx.Client, sim_url: str, upstream: str) -> str:
    name = f"claude-{uuid.uuid4().hex[:10]}"
    config = {"base_url": f"{sim_url}/v1", "model": upstream, "api_key": "sk-ant-sim", "max_tokens": 64}
    body = {"name": name, "provider": "anthropic", "config": json.dumps(config), **PRICES}
    resp = admin.post("/admin/model/save", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["provider"] == "anthropic"
    return name


@pytest.fixture(scope="module")
def claude(admin: httpx.Client, sim_url: str) -> dict[str, str]:
    return {
        "cached": register_anthropic(admin, sim_url, "claude-sim-cachewrite"),
        "plain": register_anthropic(admin, sim_url, "claude-sim"),
        "ratelimited": register_anthropic(admin, sim_url, "claude-sim-ratelimited"),
    }


def settled(gateway_url: str, account: Account, expected: int) -> None:
    wait_until(
        lambda: balance_micros(gateway_url, account.key) == expected or None, what="usage to be settled"
    )


def test_a_chat_completion_is_answered_and_billed_exactly(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    claude: dict[str, str],
    gateway_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=1)
    before = balance_micros(gateway_url, account.key)
    reply = client_for(account.key).chat.completions.create(
        model=claude["cached"], messages=[{"role": "user", "content": EIGHT_WORDS}], max_tokens=4
    )
    assert reply.model == claude["cached"]
    assert reply.choices[0].message.content == "tok0 tok1 tok2 tok3"
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (8, 4)
    assert reply.usage.prompt_tokens_details is not None
    assert reply.usage.prompt_tokens_details.cached_tokens == 2
    settled(gateway_url, account, before - CACHED_COST)
    assert ledger_usage(config, account.org_id) == (1, CACHED_COST)


def test_a_streamed_chat_completion_is_billed_for_its_usage(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    claude: dict[str, str],
    gateway_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=1)
    before = balance_micros(gateway_url, account.key)
    stream = client_for(account.key).chat.completions.create(
        model=claude["cached"],
        messages=[{"role": "user", "content": EIGHT_WORDS}],
        max_tokens=4,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.usage is not None:
            usage = chunk.usage
    assert text == "tok0 tok1 tok2 tok3 "
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (8, 4)
    settled(gateway_url, account, before - CACHED_COST)
    assert ledger_usage(config, account.org_id) == (1, CACHED_COST)


def test_tool_calls_and_upstream_refusals(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    claude: dict[str, str],
    gateway_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=1)
    client = client_for(account.key)
    ask: Any = {"role": "user", "content": "What is the weather in Paris? Use get_weather."}
    reply = client.chat.completions.create(
        model=claude["plain"], messages=[ask], tools=[WEATHER_TOOL], max_tokens=4
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "sim"}
    assert reply.usage is not None
    cost = reply.usage.prompt_tokens * 2 + reply.usage.completion_tokens * 6
    settled(gateway_url, account, 1_000_000 - cost)

    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(
            model=claude["ratelimited"], messages=[{"role": "user", "content": "hi"}], max_tokens=4
        )
    assert refused.value.code == "rate_limit_exceeded"
    assert balance_micros(gateway_url, account.key) == 1_000_000 - cost  # a refusal charges nothing
    assert ledger_usage(config, account.org_id) == (1, cost)
