"""Refusals in OpenAI's envelope, with the right status, and nothing charged or sent upstream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from pricing_helpers import register, unique, upstream_calls

from tollgate.devstack.testing import Account, balance_micros, wait_until

CHAT = [{"role": "user", "content": "hello"}]


def _envelope(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    assert set(body) == {"error"}, body
    assert {"message", "type", "code", "param"} <= set(body["error"]), body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body["error"])


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer tg_not_a_real_key"},
        {"Authorization": "Basic Zm9vOmJhcg=="},
        {"X-API-Key": "tg_wrong"},
    ],
)
def test_missing_or_bad_key_is_401(gateway_url: str, sim_models: list[str], headers: dict[str, str]) -> None:
    resp = httpx.post(
        f"{gateway_url}/v1/chat/completions", json={"model": "sim-chat", "messages": CHAT}, headers=headers
    )
    assert resp.status_code == 401
    assert _envelope(resp)["type"] == "authentication_error"


def test_x_api_key_header_is_accepted(gateway_url: str, new_account: Callable[..., Account]) -> None:
    account = new_account(credits=1)
    resp = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "sim-chat", "messages": CHAT},
        headers={"X-API-Key": account.key},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text


def test_revoked_key_is_refused_while_its_principal_is_cached(
    admin: httpx.Client,
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
) -> None:
    account = new_account(credits=1)
    client = client_for(account.key)
    client.chat.completions.create(model="sim-chat", messages=CHAT)  # warms the gateway's key cache
    assert admin.post("/admin/api-key/delete", json={"id": account.key_id}).status_code == 200

    def refused() -> bool:
        try:
            client.chat.completions.create(model="sim-chat", messages=CHAT)
        except openai.AuthenticationError:
            return True
        return False

    # well within the cached principal's 30 s: auth.keys.v1 dropped it (how fast: make bench)
    wait_until(refused, timeout=10, what="the revoked key to be refused")
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="sim-chat", messages=CHAT)


def test_unknown_model_is_404(gateway_url: str, new_account: Callable[..., Account]) -> None:
    account = new_account(credits=1)
    resp = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "no-such-model", "messages": CHAT},
        headers={"Authorization": f"Bearer {account.key}"},
    )
    assert resp.status_code == 404
    assert _envelope(resp)["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"model": "sim-chat", "messages": [', None),
        (b'{"model": "sim-chat"}', "messages"),
        (b'{"model": "sim-chat", "messages": []}', "messages"),
        (b'{"model": "sim-chat", "messages": "hello"}', "messages"),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": 42, "messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b"[1, 2, 3]", None),
    ],
)
def test_malformed_body_is_400(
    gateway_url: str, new_account: Callable[..., Account], body: bytes, param: str | None
) -> None:
    account = new_account(credits=1)
    resp = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        content=body,
        headers={"Authorization": f"Bearer {account.key}", "Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    error = _envelope(resp)
    assert error["type"] == "invalid_request_error"
    if param:
        assert error["param"] == param


def test_too_little_credit_is_402_and_the_upstream_is_never_called(
    admin: httpx.Client, gateway_url: str, sim_url: str, new_account: Callable[..., Account]
) -> None:
    # A model of its own: the simulator counts calls per upstream model, and other tests run meanwhile.
    model = unique("err-402")
    register(admin, sim_url, model, model, price_in=2, price_out=10)
    account = new_account()  # zero credit
    resp = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": model, "messages": CHAT},
        headers={"Authorization": f"Bearer {account.key}"},
    )
    assert resp.status_code == 402
    assert _envelope(resp)["code"] == "insufficient_credits"
    assert upstream_calls(sim_url, model) == 0
    assert balance_micros(gateway_url, account.key) == 0


def test_upstream_failure_is_502_and_nothing_is_charged(
    gateway_url: str, new_account: Callable[..., Account]
) -> None:
    account = new_account(credits=1)
    resp = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "sim-chat-error", "messages": CHAT},
        headers={"Authorization": f"Bearer {account.key}"},
        timeout=30,
    )
    assert resp.status_code == 502
    assert _envelope(resp)["code"] == "upstream_error"
    credits = httpx.get(
        f"{gateway_url}/v1/credits", headers={"Authorization": f"Bearer {account.key}"}
    ).json()
    assert credits["balance_micros"] == 1_000_000
    assert credits["held_micros"] == 0  # the hold was released, not left to expire
