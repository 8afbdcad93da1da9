"""Routing end to end: a model whose upstream fails (the simulator's "error" model answers 500) falls
back to another, per request (`fallbacks`, passed with the official `openai` SDK's extra_body) or per
model (`config.fallbacks` saved through /admin/model/save); the balance falls by exactly the serving
model's cost, the answer names it (x-tollgate-deployment); when every model fails, nothing is charged."""

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

EIGHT_WORDS = "one two three four five six seven eight"
# The serving model: 1 credit per 1M input tokens, 3 per 1M output (micro-credits per token); the
# failing one is dearer (5 / 15), so a charge at the wrong price shows.
GOOD_PRICES = {"price_in": 1, "price_out": 3}
BAD_PRICES = {"price_in": 5, "price_out": 15}
GOOD_COST = 8 * 1 + 4 * 3  # 8 prompt tokens, 4 completion tokens


def register(admin: httpx.Client, sim_url: str, upstream: str, prices: dict[str, int], **config: Any) -> str:
    name = f"route-{uuid.uuid4().hex[:10]}"
    config = {"base_url": f"{sim_url}/v1", "model": upstream, **config}
    resp = admin.post(
        "/admin/model/save",
        json={"name": name, "provider": "openai-compatible", "config": json.dumps(config), **prices},
    )
    assert resp.status_code == 200, resp.text
    return name


@pytest.fixture(scope="module")
def models(admin: httpx.Client, sim_url: str, gateway_url: str, config: StackConfig) -> dict[str, str]:
    good = register(admin, sim_url, "sim-model", GOOD_PRICES)
    bad = register(admin, sim_url, "sim-error", BAD_PRICES)
    configured = register(admin, sim_url, "sim-error", BAD_PRICES, fallbacks=[good])
    listed = admin.get("/admin/model/list", params={"q": configured})
    assert listed.status_code == 200, listed.text
    assert [m["fallbacks"] for m in listed.json()["data"] if m["name"] == configured] == [[good]]
    return {"good": good, "bad": bad, "configured": configured}


def settled(gateway_url: str, account: Account, expected: int) -> None:
    wait_until(lambda: balance_micros(gateway_url, account.key) == expected or None, what="usage to settle")


def ask(**extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": EIGHT_WORDS}], "max_tokens": 4, **extra}


def test_a_failing_model_falls_back_and_only_the_serving_model_is_charged(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    models: dict[str, str],
    gateway_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=1)
    before = balance_micros(gateway_url, account.key)
    raw = client_for(account.key).chat.completions.with_raw_response.create(
        model=models["bad"], **ask(extra_body={"fallbacks": [models["good"]]})
    )
    assert raw.headers["x-tollgate-deployment"] == models["good"]
    reply = raw.parse()
    assert reply.model == models["good"] and reply.choices[0].message.content == "tok0 tok1 tok2 tok3"
    settled(gateway_url, account, before - GOOD_COST)
    assert ledger_usage(config, account.org_id) == (1, GOOD_COST)


def test_a_stream_falls_back_before_its_first_byte(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    models: dict[str, str],
    gateway_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=1)
    before = balance_micros(gateway_url, account.key)
    raw = client_for(account.key).chat.completions.with_raw_response.create(
        model=models["bad"],
        stream=True,
        **ask(extra_body={"models": [models["bad"], models["good"]]}),  # OpenRouter's field
    )
    assert raw.headers["x-tollgate-deployment"] == models["good"]
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "tok0 tok1 tok2 tok3 "
    settled(gateway_url, account, before - GOOD_COST)
    assert ledger_usage(config, account.org_id) == (1, GOOD_COST)


def test_a_models_configured_fallback_serves_without_the_request_asking(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    models: dict[str, str],
    gateway_url: str,
) -> None:
    account = new_account(credits=1)
    before = balance_micros(gateway_url, account.key)
    raw = client_for(account.key).chat.completions.with_raw_response.create(
        model=models["configured"], **ask()
    )
    assert raw.headers["x-tollgate-deployment"] == models["good"]
    settled(gateway_url, account, before - GOOD_COST)


def test_when_every_model_fails_nothing_is_charged(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    admin: httpx.Client,
    sim_url: str,
    gateway_url: str,
    config: StackConfig,
) -> None:
    # two failing models of their own: the tests above cooled the shared one down (it is skipped)
    first = register(admin, sim_url, "sim-error", BAD_PRICES)
    second = register(admin, sim_url, "sim-error", BAD_PRICES)
    account = new_account(credits=1)
    before = balance_micros(gateway_url, account.key)
    with pytest.raises(openai.InternalServerError) as failed:
        client_for(account.key).chat.completions.create(
            model=first, **ask(extra_body={"fallbacks": [second]})
        )
    assert failed.value.status_code == 502
    assert f"2 models tried ({first}, {second}), 4 attempts" in str(failed.value)
    # the hold went back: the whole balance is spendable again, and no usage was booked
    settled(gateway_url, account, before)
    assert ledger_usage(config, account.org_id) == (0, 0)
