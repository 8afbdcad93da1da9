"""The Responses door end to end: the official `openai` SDK's `client.responses` with a Tollgate key
against the real stack, a catalog model behind an OpenAI-compatible upstream (the simulator), the
balance falling by exactly the charged cost, streamed and not, and refusals that charge nothing."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account, balance_micros, expected_cost, ledger_usage, wait_until

PROMPT = "say hello to the tollgate"  # 5 words: the simulator counts 5 prompt tokens


@pytest.fixture(scope="session")
def openai_for(gateway_url: str) -> Callable[[str], openai.OpenAI]:
    """The official SDK pointed at the gateway, no retries (a retry would hide a failure)."""

    def make(key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0, timeout=60)

    return make


def test_a_response_is_answered_and_billed_exactly(
    new_account: Callable[..., Account],
    openai_for: Callable[[str], openai.OpenAI],
    gateway_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=1)
    before = balance_micros(gateway_url, account.key)

    response = openai_for(account.key).responses.create(model="sim-chat", input=PROMPT, max_output_tokens=8)

    assert (response.model, response.status, response.object) == ("sim-chat", "completed", "response")
    assert len(response.output_text.split()) == 8
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (5, 8)
    cost = expected_cost(5, 8)
    wait_until(lambda: balance_micros(gateway_url, account.key) == before - cost, what="usage to be settled")
    assert ledger_usage(config, account.org_id) == (1, cost)


def test_a_streamed_response_is_billed_for_its_final_usage(
    new_account: Callable[..., Account],
    openai_for: Callable[[str], openai.OpenAI],
    gateway_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=1)
    with openai_for(account.key).responses.stream(
        model="sim-chat", input=PROMPT, max_output_tokens=6
    ) as stream:
        text = "".join(event.delta for event in stream if event.type == "response.output_text.delta")
        final = stream.get_final_response()

    assert len(text.split()) == 6 and final.output_text == text
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens, final.status) == (5, 6, "completed")
    cost = expected_cost(5, 6)
    wait_until(
        lambda: balance_micros(gateway_url, account.key) == 1_000_000 - cost,
        what="streamed usage to be settled",
    )
    assert ledger_usage(config, account.org_id) == (1, cost)


def test_refusals_and_failures_charge_nothing(
    new_account: Callable[..., Account],
    openai_for: Callable[[str], openai.OpenAI],
    gateway_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=1)
    client = openai_for(account.key)
    with pytest.raises(openai.BadRequestError) as stateful:
        client.responses.create(model="sim-chat", input="hi", previous_response_id="resp_123")
    assert stateful.value.param == "previous_response_id"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="sim-chat", input="hi", tools=[{"type": "web_search"}])
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input="hi")
    with pytest.raises(openai.AuthenticationError):
        openai_for("tg_not_a_key").responses.create(model="sim-chat", input="hi")
    with pytest.raises(openai.InternalServerError) as failed:  # the upstream's 500: a 502 to us
        client.responses.create(model="sim-chat-error", input="hi", max_output_tokens=5)
    assert failed.value.status_code == 502
    assert balance_micros(gateway_url, account.key) == 1_000_000
    assert ledger_usage(config, account.org_id) == (0, 0)


def test_an_empty_wallet_is_refused_with_402(
    new_account: Callable[..., Account], openai_for: Callable[[str], openai.OpenAI]
) -> None:
    account = new_account()
    with pytest.raises(openai.APIStatusError) as refused:
        openai_for(account.key).responses.create(model="sim-chat", input=PROMPT, max_output_tokens=5)
    assert refused.value.status_code == 402
    assert refused.value.code == "insufficient_credits"  # type: ignore[attr-defined]
