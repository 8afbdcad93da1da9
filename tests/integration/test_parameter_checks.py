"""OpenAI's parameter ranges on /v1/chat/completions and /v1/completions (issue 12): a request OpenAI
would refuse is refused by the gateway with OpenAI's error, before any hold or upstream call — not
passed to the provider and charged."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tollgate.devstack.testing import Account, balance_micros, register_model


@pytest.fixture(scope="module")
def model(admin: httpx.Client, sim_url: str) -> tuple[str, str]:
    upstream = f"sim-params-{uuid.uuid4().hex[:8]}"
    name = f"params-{uuid.uuid4().hex[:8]}"
    register_model(admin, name, upstream, sim_url)
    return name, upstream


def sim_calls(sim_url: str, upstream: str) -> int:
    return int(httpx.get(f"{sim_url}/_sim/stats", timeout=5).json()["by_model"].get(upstream, 0))


@pytest.mark.parametrize(
    ("path", "extra", "param", "code"),
    [
        ("/v1/chat/completions", {"temperature": 3}, "temperature", "decimal_above_max_value"),
        ("/v1/chat/completions", {"top_p": -1}, "top_p", "decimal_below_min_value"),
        ("/v1/chat/completions", {"n": 0}, "n", "integer_below_min_value"),
        ("/v1/chat/completions", {"stop": ["a", "b", "c", "d", "e"]}, "stop", "array_above_max_length"),
        (
            "/v1/chat/completions",
            {"tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice",
            None,
        ),
        ("/v1/completions", {"presence_penalty": 2.5}, "presence_penalty", "decimal_above_max_value"),
    ],
)
def test_out_of_range_parameters_are_refused_before_any_hold(
    new_account: Callable[..., Account],
    gateway_url: str,
    sim_url: str,
    model: tuple[str, str],
    path: str,
    extra: dict[str, Any],
    param: str,
    code: str | None,
) -> None:
    name, upstream = model
    account = new_account(credits=1)
    before, calls = balance_micros(gateway_url, account.key), sim_calls(sim_url, upstream)
    body: dict[str, Any] = {"model": name, "max_tokens": 4, **extra}
    if path == "/v1/completions":
        body["prompt"] = "hello"
    else:
        body["messages"] = [{"role": "user", "content": "hello"}]
    resp = httpx.post(
        f"{gateway_url}{path}", json=body, headers={"Authorization": f"Bearer {account.key}"}, timeout=30
    )
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert sim_calls(sim_url, upstream) == calls  # the provider never saw it
    assert balance_micros(gateway_url, account.key) == before  # nothing held or charged
