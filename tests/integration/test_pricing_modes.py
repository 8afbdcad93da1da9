"""Every pricing mode end to end on the real stack: the balance falls by exactly the cost the
gateway reports, batch costs twice, and a refused hold never reaches the upstream."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from openai import OpenAI
from pricing_helpers import bearer, register, unique, upstream_calls

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account, balance_micros, ledger_usage, wait_until


@pytest.fixture(scope="module")
def modes(admin: httpx.Client, sim_url: str) -> dict[str, str]:
    """name -> upstream model; prices in whole micro-credits per token so costs are exact."""
    names = {
        "tokens": unique("pm-tokens"),  # 2 / 10 micros a token in / out, + 7 micros a request
        "embed": unique("pm-embed"),  # 3 micros an embedded token
        "image": unique("pm-image"),  # 0.04 credits an image
    }
    register(
        admin, sim_url, names["tokens"], names["tokens"], price_in=2, price_out=10, price_request=0.000007
    )
    register(admin, sim_url, names["embed"], names["embed"], price_in=50, price_embedding=3)
    register(admin, sim_url, names["image"], names["image"], price_image=0.04)
    return names


def _settled(gateway_url: str, account: Account, expected: int) -> None:
    wait_until(lambda: balance_micros(gateway_url, account.key) == expected, what="the charge to settle")


def test_admin_save_and_list_show_the_pricing_modes(admin: httpx.Client, sim_url: str) -> None:
    name = unique("pm-admin")
    saved = register(
        admin, sim_url, name, name, price_in=1, price_request=0.5, price_image=0.02, price_embedding=0.1
    )
    assert (saved["price_request"], saved["price_image"], saved["price_embedding"]) == (0.5, 0.02, 0.1)
    listed = admin.get("/admin/model/list", params={"q": name}).json()["data"]
    assert [(m["name"], m["price_request"], m["price_image"], m["price_embedding"]) for m in listed] == [
        (name, 0.5, 0.02, 0.1)
    ]
    plain = register(admin, sim_url, name, name, price_in=1)  # re-saved without them: back to defaults
    assert (plain["price_request"], plain["price_image"], plain["price_embedding"]) == (0, 0, None)
    refused = admin.post(
        "/admin/model/save",
        json={"name": name, "provider": "openai-compatible", "config": "{}", "price_image": -1},
    )
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "price_image"


def test_completion_tokens_plus_request_price(
    modes: dict[str, str], new_account: Callable[..., Account], gateway_url: str, config: StackConfig
) -> None:
    account = new_account(credits=1)
    resp = httpx.post(
        f"{gateway_url}/v1/completions",
        json={"model": modes["tokens"], "prompt": "one two three", "max_tokens": 4},
        headers=bearer(account.key),
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    cost = int(resp.headers["x-tollgate-cost-micros"])
    assert cost == 3 * 2 + 4 * 10 + 7
    _settled(gateway_url, account, 1_000_000 - cost)
    assert ledger_usage(config, account.org_id) == (1, cost)


def test_chat_batch_costs_twice_the_same_request(
    modes: dict[str, str],
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    gateway_url: str,
) -> None:
    account = new_account(credits=1)
    client = client_for(account.key)
    messages = [{"role": "user", "content": "one two"}]
    client.chat.completions.create(model=modes["tokens"], messages=messages, max_tokens=3)  # type: ignore[arg-type]
    single = 2 * 2 + 3 * 10 + 7
    _settled(gateway_url, account, 1_000_000 - single)
    client.chat.completions.create(
        model=modes["tokens"],
        messages=messages,
        max_tokens=3,
        extra_query={"batch": "1"},  # type: ignore[arg-type]
    )
    _settled(gateway_url, account, 1_000_000 - 3 * single)


def test_embeddings_priced_per_embedded_token(
    modes: dict[str, str],
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    gateway_url: str,
) -> None:
    account = new_account(credits=1)
    reply = client_for(account.key).embeddings.create(
        model=modes["embed"], input=["hello big world", "again"]
    )
    assert len(reply.data) == 2 and reply.usage.prompt_tokens == 4
    _settled(gateway_url, account, 1_000_000 - 4 * 3)  # the embedding price, not price_in


def test_images_priced_per_image_and_batch_doubles(
    modes: dict[str, str],
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    gateway_url: str,
) -> None:
    account = new_account(credits=1)
    client = client_for(account.key)
    images = client.images.generate(model=modes["image"], prompt="a red fox", n=2)
    assert images.data is not None and len(images.data) == 2
    _settled(gateway_url, account, 1_000_000 - 80_000)
    client.images.generate(model=modes["image"], prompt="a red fox", n=1, extra_query={"batch": "1"})
    _settled(gateway_url, account, 1_000_000 - 80_000 - 80_000)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/images/generations", {"model": "image", "prompt": "a fox", "n": 3}),
        ("/v1/completions", {"model": "tokens", "prompt": "x"}),
        ("/v1/embeddings", {"model": "embed", "input": "x"}),
    ],
)
def test_refused_before_the_upstream_is_called(
    modes: dict[str, str],
    new_account: Callable[..., Account],
    gateway_url: str,
    sim_url: str,
    path: str,
    body: dict[str, object],
) -> None:
    account = new_account(credits=0.000001)  # one micro-credit: less than any of these may cost
    model = modes[str(body["model"])]
    called_before = upstream_calls(sim_url, model)  # this module's other tests use the model too
    resp = httpx.post(
        f"{gateway_url}{path}", json={**body, "model": model}, headers=bearer(account.key), timeout=30
    )
    assert resp.status_code == 402, resp.text
    error = resp.json()["error"]
    assert (error["code"], error["type"]) == ("insufficient_credits", "insufficient_quota")
    assert upstream_calls(sim_url, model) == called_before
    assert balance_micros(gateway_url, account.key) == 1


def test_streamed_completion_bills_what_was_generated(
    modes: dict[str, str], new_account: Callable[..., Account], gateway_url: str
) -> None:
    account = new_account(credits=1)
    body = {"model": modes["tokens"], "prompt": "one two three", "max_tokens": 5, "stream": True}
    with httpx.stream(
        "POST", f"{gateway_url}/v1/completions", json=body, headers=bearer(account.key)
    ) as resp:
        assert resp.status_code == 200
        events = [line[6:] for line in resp.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    text = "".join(c["choices"][0]["text"] for c in map(json.loads, events[:-1]) if c["choices"])
    assert text == "tok0 tok1 tok2 tok3 tok4 "
    _settled(gateway_url, account, 1_000_000 - (3 * 2 + 5 * 10 + 7))
