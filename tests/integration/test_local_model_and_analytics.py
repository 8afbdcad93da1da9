"""The embedded Gemma model answers through the gateway; analytics totals follow the usage events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import httpx
from openai import OpenAI

from tollgate.devstack.testing import Account, balance_micros, wait_until


def test_local_gemma_model_gives_a_real_completion(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    gateway_url: str,
) -> None:
    account = new_account(credits=1)
    reply = client_for(account.key).chat.completions.create(
        model="gemma-3-270m",
        messages=[{"role": "user", "content": "Write one sentence about the sea."}],
        max_tokens=24,
        temperature=0,
    )
    assert reply.choices[0].message.content and reply.choices[0].message.content.strip()
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    wait_until(
        lambda: balance_micros(gateway_url, account.key) < 1_000_000, what="the Gemma answer to be billed"
    )


def test_analytics_usage_totals_by_model(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    gateway_url: str,
) -> None:
    account = new_account(credits=1)
    client = client_for(account.key)
    for _ in range(3):
        client.chat.completions.create(
            model="sim-chat", messages=[{"role": "user", "content": "a b"}], max_tokens=5
        )
    client.chat.completions.create(
        model="sim-chat-nousage", messages=[{"role": "user", "content": "a"}], max_tokens=2
    )
    today = dt.datetime.now(dt.UTC).date().isoformat()

    def usage() -> dict[str, object] | None:
        resp = httpx.get(
            f"{gateway_url}/analytics/usage",
            params={"start_date": today, "end_date": today, "group_by": "model"},
            headers={"Authorization": f"Bearer {account.key}"},
        )
        assert resp.status_code == 200, resp.text
        body: dict[str, object] = resp.json()
        return body if body["total_requests"] == 4 else None

    body = wait_until(usage, what="analytics to consume the usage events")
    assert body["success_rate"] == 1.0
    breakdown = {row["model_id"]: row for row in body["breakdown"]}  # type: ignore[attr-defined]
    assert breakdown["sim-chat"]["requests"] == 3
    assert breakdown["sim-chat"]["tokens"] == 3 * (2 + 5)
    assert breakdown["sim-chat"]["cost"] == 3 * (2 * 2 + 5 * 10) / 1_000_000
    assert breakdown["sim-chat-nousage"]["requests"] == 1
    assert body["total_tokens"] == sum(row["tokens"] for row in breakdown.values())


def test_analytics_rejects_bad_parameters_in_sloughgpts_envelope(
    new_account: Callable[..., Account],
    gateway_url: str,
) -> None:
    account = new_account()
    resp = httpx.get(
        f"{gateway_url}/analytics/usage",
        params={"start_date": "yesterday"},
        headers={"Authorization": f"Bearer {account.key}"},
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "INVALID_PARAMETER"
