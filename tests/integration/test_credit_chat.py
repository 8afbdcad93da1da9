"""The credit chat API's POST /api/v1/chat and GET /api/models on the real stack: 1 credit a request, 2 with
?batch=1, the balance falls by exactly `credits_charged`, and the error bodies are the seed's."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from pricing_helpers import bearer, register, unique, upstream_calls

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account, balance_micros, ledger_usage, wait_until

HELLO = [{"role": "user", "content": "Hello, world!"}]


@pytest.fixture(scope="module")
def model(admin: httpx.Client, sim_url: str) -> tuple[str, str]:
    """(catalog name in the credit chat API's provider/model style, upstream name); token prices are
    ignored here."""
    upstream = unique("s2")
    name = f"groq/{upstream}"
    register(admin, sim_url, name, upstream, price_in=2, price_out=10)
    return name, upstream


@pytest.fixture(scope="module")
def per_request_model(admin: httpx.Client, sim_url: str) -> str:
    name = unique("s2-priced")
    register(admin, sim_url, name, name, price_request=0.25)
    return name


def chat(gateway_url: str, key: str, model: str, *, batch: bool = False, **extra: object) -> httpx.Response:
    return httpx.post(
        f"{gateway_url}/api/v1/chat" + ("?batch=1" if batch else ""),
        json={"model": model, "messages": HELLO, **extra},
        headers=bearer(key),
        timeout=30,
    )


def test_one_credit_a_request_and_two_for_batch(
    model: tuple[str, str], new_account: Callable[..., Account], gateway_url: str, config: StackConfig
) -> None:
    account = new_account(credits=5)
    first = chat(gateway_url, account.key, model[0])
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["credits_charged"], body["credits_remaining"], body["batch_request"]) == (1, 4, False)
    assert body["object"] == "chat.completion" and body["model"] == model[0]
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["usage"]["completion_tokens"] == 16  # max_tokens defaults to 150; the simulator stops at 16
    wait_until(lambda: balance_micros(gateway_url, account.key) == 4_000_000, what="1 credit to be charged")

    batch = chat(gateway_url, account.key, model[0], batch=True)
    assert batch.status_code == 200, batch.text
    assert (
        batch.json()["credits_charged"],
        batch.json()["credits_remaining"],
        batch.json()["batch_request"],
    ) == (
        2,
        2,
        True,
    )
    wait_until(lambda: balance_micros(gateway_url, account.key) == 2_000_000, what="2 credits to be charged")
    assert ledger_usage(config, account.org_id) == (2, 3_000_000)


def test_a_models_per_request_price_replaces_the_default(
    per_request_model: str, new_account: Callable[..., Account], gateway_url: str
) -> None:
    account = new_account(credits=1)
    resp = chat(gateway_url, account.key, per_request_model, max_tokens=3)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["credits_charged"], resp.json()["credits_remaining"]) == (0.25, 0.75)
    wait_until(lambda: balance_micros(gateway_url, account.key) == 750_000, what="0.25 credits to be charged")


def test_insufficient_credits_body_and_no_upstream_call(
    model: tuple[str, str], new_account: Callable[..., Account], gateway_url: str, sim_url: str
) -> None:
    account = new_account()
    before = upstream_calls(sim_url, model[1])
    resp = chat(gateway_url, account.key, model[0])
    assert resp.status_code == 402
    assert resp.json() == {
        "error": "Insufficient credits. Required: 1, Available: 0",
        "credits_required": 1,
        "credits_available": 0,
    }
    batch = chat(gateway_url, account.key, model[0], batch=True)
    assert batch.status_code == 402 and batch.json()["credits_required"] == 2
    assert upstream_calls(sim_url, model[1]) == before
    assert balance_micros(gateway_url, account.key) == 0


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer tg_not_a_key"}])
def test_invalid_api_key_body(gateway_url: str, model: tuple[str, str], headers: dict[str, str]) -> None:
    resp = httpx.post(
        f"{gateway_url}/api/v1/chat", json={"model": model[0], "messages": HELLO}, headers=headers
    )
    assert (resp.status_code, resp.json()) == (401, {"error": "Invalid API key"})


def test_model_not_found_body(new_account: Callable[..., Account], gateway_url: str) -> None:
    account = new_account(credits=1)
    resp = chat(gateway_url, account.key, "invalid-model")
    assert (resp.status_code, resp.json()) == (404, {"error": "Model 'invalid-model' not found"})


@pytest.mark.parametrize("body", [{}, {"model": "x"}, {"messages": HELLO}, {"model": "x", "messages": []}])
def test_missing_fields_body(
    new_account: Callable[..., Account], gateway_url: str, body: dict[str, object]
) -> None:
    account = new_account(credits=1)
    resp = httpx.post(f"{gateway_url}/api/v1/chat", json=body, headers=bearer(account.key), timeout=30)
    assert (resp.status_code, resp.json()) == (
        400,
        {"error": "Missing required fields: model and messages array"},
    )
    assert balance_micros(gateway_url, account.key) == 1_000_000


def test_models_list(model: tuple[str, str], gateway_url: str) -> None:
    resp = httpx.get(f"{gateway_url}/api/models", timeout=10)
    assert resp.status_code == 200
    listed = {m["id"]: m for m in resp.json()["data"]}
    assert (listed[model[0]]["credits_per_request"], listed[model[0]]["credits_per_batch_request"]) == (1, 2)


def test_a_used_up_month_quota_is_429_before_the_upstream(
    model: tuple[str, str],
    new_account: Callable[..., Account],
    admin: httpx.Client,
    gateway_url: str,
    sim_url: str,
) -> None:
    account = new_account(credits=5)
    assert chat(gateway_url, account.key, model[0]).status_code == 200
    wait_until(
        lambda: balance_micros(gateway_url, account.key) == 4_000_000, what="the first credit to be charged"
    )
    update = admin.post("/admin/api-key/update", json={"id": account.key_id, "month_quota": 1})
    assert update.status_code == 200, update.text
    # Until the gateway hears of the change (auth.keys.v1) a request may still be admitted, and then
    # charged like any other: count them, so the balance is exact whichever way the race went.
    admitted = 1

    def quota_applies() -> bool:
        nonlocal admitted
        status = chat(gateway_url, account.key, model[0]).status_code
        admitted += status == 200
        return status == 429

    wait_until(quota_applies, what="the quota to apply")
    expected = 5_000_000 - admitted * 1_000_000
    wait_until(lambda: balance_micros(gateway_url, account.key) == expected, what="admitted requests charged")
    before = upstream_calls(sim_url, model[1])
    resp = chat(gateway_url, account.key, model[0])
    assert resp.status_code == 429
    assert resp.json()["code"] == "quota_exceeded" and resp.json()["error"]
    assert resp.json()["credits_required"] == 1
    assert upstream_calls(sim_url, model[1]) == before
    assert balance_micros(gateway_url, account.key) == expected
