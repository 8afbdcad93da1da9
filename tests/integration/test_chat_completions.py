"""A paid request end to end: completion, streaming, usage, and the balance falling by its cost."""

from __future__ import annotations

from collections.abc import Callable

from openai import OpenAI

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account, balance_micros, expected_cost, ledger_usage, wait_until

PROMPT = "say hello to the tollgate"  # 5 words: the simulator counts 5 prompt tokens


def test_chat_completion_is_answered_and_billed_exactly(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    gateway_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=1)
    before = balance_micros(gateway_url, account.key)
    assert before == 1_000_000

    reply = client_for(account.key).chat.completions.create(
        model="sim-chat", messages=[{"role": "user", "content": PROMPT}], max_tokens=8
    )

    assert reply.model == "sim-chat"
    assert reply.choices[0].message.content
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (5, 8, 13)
    cost = expected_cost(5, 8)
    wait_until(lambda: balance_micros(gateway_url, account.key) == before - cost, what="usage to be settled")
    assert ledger_usage(config, account.org_id) == (1, cost)


def test_streaming_reports_usage_when_asked_and_is_billed(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    gateway_url: str,
) -> None:
    account = new_account(credits=1)
    stream = client_for(account.key).chat.completions.create(
        model="sim-chat",
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = [c.usage for c in chunks if c.usage is not None]

    assert len(text.split()) == 6
    assert len(usage) == 1 and (usage[0].prompt_tokens, usage[0].completion_tokens) == (5, 6)
    wait_until(
        lambda: balance_micros(gateway_url, account.key) == 1_000_000 - expected_cost(5, 6),
        what="streamed usage to be settled",
    )


def test_streaming_without_include_usage_sends_no_usage_chunk_but_still_bills(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    gateway_url: str,
) -> None:
    account = new_account(credits=1)
    chunks = list(
        client_for(account.key).chat.completions.create(
            model="sim-chat", messages=[{"role": "user", "content": PROMPT}], max_tokens=4, stream=True
        )
    )
    assert all(c.usage is None for c in chunks)
    wait_until(
        lambda: balance_micros(gateway_url, account.key) == 1_000_000 - expected_cost(5, 4),
        what="usage of a stream without include_usage to be settled",
    )


def test_upstream_streaming_without_usage_is_counted_by_the_gateway(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    gateway_url: str,
    config: StackConfig,
) -> None:
    """llama-cpp-python's server ignores include_usage; the gateway counts tokens itself and bills them."""
    account = new_account(credits=1)
    chunks = list(
        client_for(account.key).chat.completions.create(
            model="sim-chat-nousage",
            messages=[{"role": "user", "content": PROMPT}],
            max_tokens=7,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1
    assert usage[0].completion_tokens == 7  # one token per content chunk
    assert usage[0].prompt_tokens > 0
    wait_until(lambda: ledger_usage(config, account.org_id)[0] == 1, what="estimated usage to be billed")
    _, charged = ledger_usage(config, account.org_id)
    assert charged == expected_cost(usage[0].prompt_tokens, usage[0].completion_tokens)


def test_models_list_is_openai_shaped(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    sim_models: list[str],
) -> None:
    account = new_account()
    listed = {m.id for m in client_for(account.key).models.list()}
    assert set(sim_models) <= listed
