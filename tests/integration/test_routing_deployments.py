"""Several deployments per model name, end to end: a model saved through /admin/model/save with
`config.deployments` against the upstream simulator (which fails on cue by upstream model name:
"sim-error" always answers 500, "flaky<N>" the first N calls of that name). A failing priority-0
deployment is served around by the next, which the answer names (x-tollgate-deployment) and which is
charged once at the model's price; weights spread traffic; a deployment that cooled down is skipped
and comes back after its cooldown (the stack's GATEWAY_ROUTING_COOLDOWN_S, 30 s by default)."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
from openai import OpenAI

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account, balance_micros, ledger_usage, wait_until

EIGHT_WORDS = "one two three four five six seven eight"
PRICES = {"price_in": 1, "price_out": 3}  # micro-credits per token
COST = 8 * 1 + 4 * 3  # 8 prompt tokens, 4 completion tokens
COOLDOWN_WAIT_S = 45  # the default cooldown (30 s) and a margin


def save(
    admin: httpx.Client, sim_url: str, upstream: str, deployments: list[dict[str, Any]], **top: Any
) -> str:
    name = f"deploy-{uuid.uuid4().hex[:10]}"
    config = {
        "base_url": f"{sim_url}/v1",
        "model": upstream,
        "api_key": "sk-top",
        **top,
        "deployments": deployments,
    }
    resp = admin.post(
        "/admin/model/save",
        json={"name": name, "provider": "openai-compatible", "config": json.dumps(config), **PRICES},
    )
    assert resp.status_code == 200, resp.text
    return name


def ask(client: OpenAI, model: str) -> str:
    """One chat completion; the deployment that served it."""
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": EIGHT_WORDS}], max_tokens=4
    )
    assert raw.parse().model == model  # the catalog model, whichever deployment served
    return raw.headers["x-tollgate-deployment"]


def sim_calls(sim_url: str, upstream: str) -> int:
    return int(httpx.get(f"{sim_url}/_sim/stats", timeout=5).json()["by_model"].get(upstream, 0))


def test_a_bad_deployment_is_refused_and_secrets_are_never_listed(admin: httpx.Client, sim_url: str) -> None:
    name = f"deploy-{uuid.uuid4().hex[:10]}"
    config = {"base_url": f"{sim_url}/v1", "deployments": [{"base_url": f"{sim_url}/v1", "weight": 0}]}
    resp = admin.post(
        "/admin/model/save", json={"name": name, "provider": "openai", "config": json.dumps(config)}
    )
    assert resp.status_code == 400, resp.text
    assert "config.deployments[0].weight" in resp.text
    assert admin.get("/admin/model/list", params={"q": name}).json()["total"] == 0  # nothing saved
    saved = save(
        admin,
        sim_url,
        "sim-model",
        [{"name": "b", "base_url": f"{sim_url}/v1", "api_key": "sk-secret-b", "weight": 3}],
    )
    listed = admin.get("/admin/model/list", params={"q": saved})
    assert listed.status_code == 200 and "sk-secret-b" not in listed.text and "sk-top" not in listed.text
    (model,) = listed.json()["data"]
    assert model["deployments"] == [
        {
            "name": "b",
            "provider": "openai-compatible",
            "base_url": f"{sim_url}/v1",
            "model": "sim-model",
            "weight": 3,
            "priority": 0,
            "has_api_key": True,
            "region": None,  # Bedrock deployments only
        }
    ]


def test_a_failing_first_deployment_is_served_by_the_second_and_charged_once(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    admin: httpx.Client,
    sim_url: str,
    gateway_url: str,
    config: StackConfig,
) -> None:
    model = save(
        admin,
        sim_url,
        "sim-error",
        [{"name": "backup", "base_url": f"{sim_url}/v1", "model": "sim-model", "priority": 1}],
    )
    account = new_account(credits=1)
    before = balance_micros(gateway_url, account.key)
    assert ask(client_for(account.key), model) == f"{model}/backup"
    wait_until(
        lambda: balance_micros(gateway_url, account.key) == before - COST or None, what="usage to settle"
    )
    assert ledger_usage(config, account.org_id) == (1, COST)


def test_weights_spread_traffic(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    admin: httpx.Client,
    sim_url: str,
) -> None:
    model = save(
        admin,
        sim_url,
        "sim-model",
        [{"name": "light", "base_url": f"{sim_url}/v1", "model": "sim-model", "weight": 1}],
        weight=3,
    )
    client = client_for(new_account(credits=1).key)
    served = Counter(ask(client, model) for _ in range(40))
    assert set(served) == {f"{model}/default", f"{model}/light"}, served  # both used
    assert served[f"{model}/default"] > served[f"{model}/light"], served  # the heavier more (30:10 expected)


def test_a_cooled_down_deployment_is_skipped_and_comes_back(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    admin: httpx.Client,
    sim_url: str,
) -> None:
    flaky = f"sim-model-flaky3-{uuid.uuid4().hex[:8]}"  # 500 to its first 3 calls, then answers
    model = save(
        admin,
        sim_url,
        flaky,
        [{"name": "backup", "base_url": f"{sim_url}/v1", "model": "sim-model", "priority": 1}],
    )
    client = client_for(new_account(credits=1).key)
    assert ask(client, model) == f"{model}/backup"  # default failed twice (an attempt and its retry)
    assert ask(client, model) == f"{model}/backup"  # its third failure in a row: it cools down
    assert sim_calls(sim_url, flaky) == 3
    assert ask(client, model) == f"{model}/backup"
    assert sim_calls(sim_url, flaky) == 3  # skipped while it cools down
    deadline = time.monotonic() + COOLDOWN_WAIT_S
    while (served := ask(client, model)) != f"{model}/default" and time.monotonic() < deadline:
        time.sleep(1)
    assert served == f"{model}/default"  # back after its cooldown (its upstream answers again)
    assert sim_calls(sim_url, flaky) == 4
