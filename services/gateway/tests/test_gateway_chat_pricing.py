"""The /v1/chat/completions fast path with the new Reserve contract and the pricing modes."""

from __future__ import annotations

import pytest
from gateway_fakes import Harness

CHAT = {"model": "gpt-sim", "messages": [{"role": "user", "content": "hello there world"}], "max_tokens": 4}


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def test_reserve_carries_quota_user_and_model(harness: Harness) -> None:
    r = await harness.client.post("/v1/chat/completions", json=CHAT, headers=auth("quota-key"))
    assert r.status_code == 429
    [sent] = harness.billing.requests
    assert (sent.org_id, sent.key_id, sent.user_id, sent.model) == ("org-quota", 4, "user-4", "gpt-sim")
    assert sent.month_quota_micros == 5_000_000


@pytest.mark.parametrize(
    ("key", "status", "code", "error_type"),
    [
        ("poor-key", 402, "insufficient_credits", "insufficient_quota"),
        ("budget-key", 402, "budget_exceeded", "insufficient_quota"),
        ("quota-key", 429, "quota_exceeded", "insufficient_quota"),
    ],
)
async def test_every_refusal_reason_maps_to_its_status_before_the_upstream(
    harness: Harness, key: str, status: int, code: str, error_type: str
) -> None:
    for stream in (False, True):
        r = await harness.client.post(
            "/v1/chat/completions", json={**CHAT, "stream": stream}, headers=auth(key)
        )
        assert r.status_code == status
        error = r.json()["error"]
        assert (error["code"], error["type"]) == (code, error_type)
    assert harness.sim.state.stats.chat_completions == 0
    assert harness.emitter.events == []
    reason = code if code != "insufficient_credits" else "insufficient_credits"
    assert harness.metrics.holds_refused.labels(reason)._value.get() == 2


async def test_batch_costs_twice_and_holds_twice(harness: Harness) -> None:
    plain = await harness.client.post("/v1/chat/completions", json=CHAT, headers=auth("user-key"))
    batch = await harness.client.post("/v1/chat/completions?batch=1", json=CHAT, headers=auth("user-key"))
    assert plain.status_code == batch.status_code == 200
    (_, _, _, hold_plain), (_, _, _, hold_batch) = harness.billing.reserves
    assert hold_batch == 2 * hold_plain
    first, second = harness.emitter.decoded()
    assert (first.batch, second.batch) == (False, True)
    assert first.cost_micros == 3 * 2 + 4 * 6 and second.cost_micros == 2 * first.cost_micros
    assert first.operation == second.operation == "chat"


async def test_a_per_request_price_is_added_to_the_token_cost(harness: Harness) -> None:
    r = await harness.client.post(
        "/v1/chat/completions", json={**CHAT, "model": "priced"}, headers=auth("user-key")
    )
    assert r.status_code == 200
    [event] = harness.emitter.decoded()
    assert event.cost_micros == 250_000 + 3 * 2 + 4 * 6
    assert harness.billing.reserves[0][3] >= event.cost_micros


async def test_a_bad_batch_flag_is_400(harness: Harness) -> None:
    r = await harness.client.post("/v1/chat/completions?batch=maybe", json=CHAT, headers=auth("user-key"))
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "batch"
    assert harness.billing.reserves == []
