"""The Anthropic door end to end: the official `anthropic` SDK with a Tollgate key against the real
stack, a catalog model behind an OpenAI-compatible upstream (the simulator), the balance falling by
exactly the charged cost, and Anthropic's errors."""

from __future__ import annotations

from collections.abc import Callable

import anthropic
import pytest

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account, balance_micros, expected_cost, ledger_usage, wait_until

PROMPT = "say hello to the tollgate"  # 5 words: the simulator counts 5 prompt tokens


@pytest.fixture(scope="session")
def anthropic_for(gateway_url: str) -> Callable[[str], anthropic.Anthropic]:
    """The official SDK pointed at the gateway, no retries (a retry would hide a failure)."""

    def make(key: str) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=gateway_url, api_key=key, max_retries=0, timeout=60)

    return make


def test_a_message_is_answered_and_billed_exactly(
    new_account: Callable[..., Account],
    anthropic_for: Callable[[str], anthropic.Anthropic],
    gateway_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=1)
    before = balance_micros(gateway_url, account.key)

    message = anthropic_for(account.key).messages.create(
        model="sim-chat", max_tokens=8, messages=[{"role": "user", "content": PROMPT}]
    )

    assert message.model == "sim-chat" and message.role == "assistant"
    assert message.content[0].type == "text" and len(message.content[0].text.split()) == 8
    assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == (
        "end_turn",
        5,
        8,
    )
    cost = expected_cost(5, 8)
    wait_until(lambda: balance_micros(gateway_url, account.key) == before - cost, what="usage to be settled")
    assert ledger_usage(config, account.org_id) == (1, cost)


def test_a_streamed_message_is_billed_for_its_final_usage(
    new_account: Callable[..., Account],
    anthropic_for: Callable[[str], anthropic.Anthropic],
    gateway_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=1)
    with anthropic_for(account.key).messages.stream(
        model="sim-chat", max_tokens=6, messages=[{"role": "user", "content": PROMPT}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert len(text.split()) == 6
    assert (final.usage.input_tokens, final.usage.output_tokens, final.stop_reason) == (5, 6, "end_turn")
    cost = expected_cost(5, 6)
    wait_until(
        lambda: balance_micros(gateway_url, account.key) == 1_000_000 - cost,
        what="streamed usage to be settled",
    )
    assert ledger_usage(config, account.org_id) == (1, cost)


def test_count_tokens_and_errors_charge_nothing(
    new_account: Callable[..., Account],
    anthropic_for: Callable[[str], anthropic.Anthropic],
    gateway_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=1)
    client = anthropic_for(account.key)
    count = client.messages.count_tokens(model="sim-chat", messages=[{"role": "user", "content": PROMPT}])
    assert count.input_tokens > 0
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(
            model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="sim-chat", max_tokens=0, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.AuthenticationError):
        anthropic_for("tg_not_a_key").messages.create(
            model="sim-chat", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(anthropic.InternalServerError) as failed:  # the upstream's 500: a 502 to us
        client.messages.create(
            model="sim-chat-error", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    assert failed.value.status_code == 502
    assert balance_micros(gateway_url, account.key) == 1_000_000
    assert ledger_usage(config, account.org_id) == (0, 0)


def test_an_empty_wallet_is_a_billing_error(
    new_account: Callable[..., Account], anthropic_for: Callable[[str], anthropic.Anthropic]
) -> None:
    account = new_account()
    with pytest.raises(anthropic.PaymentRequiredError) as refused:
        anthropic_for(account.key).messages.create(
            model="sim-chat", max_tokens=5, messages=[{"role": "user", "content": PROMPT}]
        )
    assert refused.value.status_code == 402
    assert refused.value.body["error"]["type"] == "billing_error"  # type: ignore[index]
