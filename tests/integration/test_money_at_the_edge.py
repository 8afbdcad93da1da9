"""Money at the edge (issue 9, docs/billing.md "Holds at answer time", "Streams cut short",
"Token classes"), on the real stack: the hold falls to the actual cost as the gateway answers, a
gateway killed right after answering loses no usage, a stream cut short is billed for what was
generated and its upstream stopped, and every token class is priced and reported."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from openai import OpenAI

from tollgate.devstack.config import StackConfig
from tollgate.devstack.stack import Stack
from tollgate.devstack.testing import (
    Account,
    balance_micros,
    billing_db,
    ledger_usage,
    register_model,
    service_db,
    settled_events,
    wait_until,
)


def _model(admin: httpx.Client, sim_url: str, upstream: str, **prices: float) -> str:
    """A catalog model of the simulator under a name of its own (so its stats are this test's)."""
    name = f"t{uuid.uuid4().hex[:6]}-{upstream}"  # the simulator reads its behaviour from the name
    body = {
        "name": name,
        "provider": "openai-compatible",
        "config": json.dumps({"base_url": f"{sim_url}/v1", "model": name, "api_key": "sk-sim"}),
        "price_in": 2,
        "price_out": 10,
        **prices,
    }
    resp = admin.post("/admin/model/save", json=body)
    assert resp.status_code == 200, resp.text
    return name


def _charges(config: StackConfig, org_id: str) -> dict[str, int]:
    with billing_db(config) as conn:
        rows = conn.execute(
            "SELECT ref, -amount_micros FROM ledger_entries WHERE org_id = %s AND kind = 'usage'", (org_id,)
        ).fetchall()
    return {str(ref): int(amount) for ref, amount in rows}


def _analytics(config: StackConfig, org_id: str) -> dict[str, tuple[int, ...]]:
    """event id -> (tokens_in, tokens_out, cost, cached, cache_write, reasoning) as analytics stored it."""
    with service_db(config, "analytics") as conn:
        rows = conn.execute(
            "SELECT event_id, tokens_in, tokens_out, cost_micros, tokens_cached_in, tokens_cache_write,"
            " tokens_reasoning, status FROM usage_events WHERE org_id = %s",
            (org_id,),
        ).fetchall()
    return {str(r[0]): (*(int(v) for v in r[1:7]), r[7]) for r in rows}


def test_back_to_back_requests_see_the_balance_after_each_answer(
    new_account: Callable[..., Account],
    admin: httpx.Client,
    sim_url: str,
    client_for: Callable[[str], OpenAI],
    config: StackConfig,
    gateway_url: str,
) -> None:
    # 20 credits; each request may cost up to 12.3 credits (1,000 max tokens at 12,300 credits/1M)
    # but costs 16 tokens' worth. Without the hold falling at answer time, the second request meets
    # the first one's 12.3-credit hold still open (settlement comes 30-125 ms later): 402.
    model = _model(admin, sim_url, "sim-pricey", price_in=0, price_out=12_300)
    account = new_account(credits=20)
    client = client_for(account.key)
    ids = []
    for _ in range(6):
        reply = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=1000
        )
        ids.append(reply.headers["x-request-id"])
        assert reply.parse().usage.completion_tokens == 16
    wait_until(lambda: settled_events(config, account.org_id) == 6, what="6 requests to settle")
    cost = 16 * 12_300  # micros: 16 tokens at 0.0123 credits
    assert _charges(config, account.org_id) == dict.fromkeys(ids, cost)
    assert balance_micros(gateway_url, account.key) == 20_000_000 - 6 * cost


@pytest.fixture
def killable_gateway(stack: Stack) -> Iterator[None]:
    """The gateway holds its usage events 1 s before sending them to Kafka, and billing settles marks
    whose event never came after 1 s: what a gateway killed after answering leaves behind, on cue.
    Both are restarted with their usual settings afterwards."""
    stack.stop_service("billing")
    stack.start_service(
        "billing",
        extra_env={"BILLING_HOLD_MARK_GRACE_SECONDS": "1", "BILLING_SWEEP_INTERVAL_SECONDS": "0.2"},
    )
    stack.stop_service("gateway")
    stack.start_service("gateway", extra_env={"GATEWAY_USAGE_LINGER_MS": "1000"})
    yield
    for svc in ("gateway", "billing"):
        if stack.is_running(svc):
            stack.stop_service(svc)
    stack.start_service("billing")
    stack.start_service("gateway")


def test_usage_answered_by_a_gateway_killed_before_sending_it_is_settled_from_the_hold_marks(
    stack: Stack,
    killable_gateway: None,
    new_account: Callable[..., Account],
    config: StackConfig,
    gateway_url: str,
) -> None:
    account = new_account(credits=1)
    answered: dict[str, int] = {}
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        for _ in range(25):
            resp = client.post(
                "/v1/chat/completions",
                json={
                    "model": "sim-chat",
                    "messages": [{"role": "user", "content": "one two"}],
                    "max_tokens": 5,
                },
                headers={"Authorization": f"Bearer {account.key}"},
            )
            assert resp.status_code == 200, resp.text
            usage = resp.json()["usage"]
            answered[resp.headers["x-request-id"]] = (
                usage["prompt_tokens"] * 2 + usage["completion_tokens"] * 10
            )
    stack.stop_service("gateway", kill=True)  # within the 1 s linger: none of the 25 events was sent
    stack.start_service("gateway", extra_env={"GATEWAY_USAGE_LINGER_MS": "1000"})

    wait_until(
        lambda: settled_events(config, account.org_id) == 25, what="the 25 answered requests to settle"
    )
    assert _charges(config, account.org_id) == answered  # each exactly once, at its actual cost
    wait_until(lambda: len(_analytics(config, account.org_id)) == 25, what="analytics to record all 25")
    assert set(_analytics(config, account.org_id)) == set(answered)
    metrics = httpx.get(config.metrics_url("billing"), timeout=10).text
    republished = [
        line for line in metrics.splitlines() if line.startswith("billing_hold_marks_republished_total")
    ]
    assert republished and float(republished[0].split()[-1]) >= 25, republished
    assert balance_micros(gateway_url, account.key) == 1_000_000 - sum(answered.values())


def test_a_stream_cut_short_is_billed_for_what_was_generated_and_its_upstream_is_stopped(
    new_account: Callable[..., Account],
    admin: httpx.Client,
    sim_url: str,
    config: StackConfig,
    gateway_url: str,
) -> None:
    model = _model(admin, sim_url, "sim-drip-long")  # 40 chunks, one per 50 ms
    account = new_account(credits=1)
    received = 0
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "count slowly please"}],
        "max_tokens": 40,
        "stream": True,
    }
    with (
        httpx.Client(base_url=gateway_url, timeout=30) as client,
        client.stream(
            "POST", "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {account.key}"}
        ) as resp,
    ):
        assert resp.status_code == 200
        request_id = resp.headers["x-request-id"]
        for line in resp.iter_lines():
            if line.startswith("data: {") and '"content"' in line:
                received += 1
                if received == 5:
                    break  # the client goes away mid-stream
    wait_until(lambda: settled_events(config, account.org_id) == 1, what="the cut stream to settle")
    stored = wait_until(lambda: _analytics(config, account.org_id).get(request_id), what="its usage record")
    tokens_in, tokens_out, cost, *_classes, status = stored
    assert status == "client_disconnected"
    # the rule: the prompt (the gateway's estimate, ~4 characters a token, when the upstream reported
    # none) plus one token per content chunk the gateway received before it stopped the upstream
    assert tokens_in == math.ceil(len("count slowly please") / 4) + 4
    assert 5 <= tokens_out < 40
    assert cost == tokens_in * 2 + tokens_out * 10
    assert _charges(config, account.org_id) == {request_id: cost}

    def aborted() -> dict | None:
        stats = httpx.get(f"{sim_url}/_sim/stats", timeout=5).json()
        return next((s for s in stats["streams_aborted"] if s["model"] == model), None)

    stopped = wait_until(aborted, what="the simulator to see the stream stopped")
    assert stopped["chunks_sent"] < 40  # the generation stopped: it never ran to its end
    assert tokens_out <= stopped["chunks_sent"] + 1  # billed no more than the upstream generated


def test_token_classes_are_priced_on_their_own_and_a_stream_costs_what_the_same_answer_costs(
    new_account: Callable[..., Account],
    admin: httpx.Client,
    sim_url: str,
    config: StackConfig,
    gateway_url: str,
) -> None:
    # the simulator reports half the prompt as cached and half the completion as reasoning
    model = _model(admin, sim_url, "sim-cachedetail", price_cached_in=0.5, price_reasoning=20)
    account = new_account(credits=1)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa"  # 10 prompt tokens
    body = {"model": model, "messages": [{"role": "user", "content": words}], "max_tokens": 16}
    headers = {"Authorization": f"Bearer {account.key}"}
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        plain = client.post("/v1/chat/completions", json=body, headers=headers)
        assert plain.status_code == 200, plain.text
        assert plain.json()["usage"]["prompt_tokens_details"]["cached_tokens"] == 5
        streamed = client.post("/v1/chat/completions", json={**body, "stream": True}, headers=headers)
        assert streamed.status_code == 200
    ids = [plain.headers["x-request-id"], streamed.headers["x-request-id"]]
    # 5 fresh input tokens at 2, 5 cached at 0.5, 8 output at 10, 8 reasoning at 20 (micros a token)
    cost = math.ceil(5 * 2 + 5 * 0.5 + 8 * 10 + 8 * 20)
    wait_until(lambda: settled_events(config, account.org_id) == 2, what="both requests to settle")
    assert _charges(config, account.org_id) == dict.fromkeys(ids, cost)
    stored = wait_until(
        lambda: (rows := _analytics(config, account.org_id)) and len(rows) == 2 and rows, what="analytics"
    )
    assert {stored[i][:6] for i in ids} == {(10, 16, cost, 5, 0, 8)}

    usage = httpx.get(f"{gateway_url}/analytics/usage", headers=headers, timeout=10).json()
    assert (usage["total_cached_tokens"], usage["total_reasoning_tokens"]) == (10, 16)
    stats = httpx.get(f"{gateway_url}/cost/stats", headers=headers, timeout=10).json()
    today = [d for d in stats["daily_stats"] if d["requests"]]
    assert [(d["tokens"], d["cached_tokens"], d["reasoning_tokens"], d["cost_micros"]) for d in today] == [
        (52, 10, 16, 2 * cost)
    ]
    assert ledger_usage(config, account.org_id) == (2, 2 * cost)


def test_cache_writes_reported_as_anthropic_proxies_do_are_priced_with_their_own_price(
    new_account: Callable[..., Account],
    admin: httpx.Client,
    sim_url: str,
    config: StackConfig,
    gateway_url: str,
) -> None:
    # top-level cache_read_input_tokens (a quarter of the prompt) and cache_creation_input_tokens (half)
    model = _model(admin, sim_url, "sim-cachewrite", price_cached_in=0.2, price_cache_write=2.5)
    account = new_account(credits=1)
    words = " ".join(f"w{i}" for i in range(8))  # 8 prompt tokens: 2 read, 4 written, 2 fresh
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        resp = client.post(
            "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": words}], "max_tokens": 3},
            headers={"Authorization": f"Bearer {account.key}"},
        )
    assert resp.status_code == 200, resp.text
    cost = math.ceil(2 * 2 + 2 * 0.2 + 4 * 2.5 + 3 * 10)
    wait_until(lambda: settled_events(config, account.org_id) == 1, what="the request to settle")
    assert _charges(config, account.org_id) == {resp.headers["x-request-id"]: cost}
    stored = wait_until(lambda: _analytics(config, account.org_id), what="analytics")
    assert next(iter(stored.values()))[:6] == (8, 3, cost, 2, 4, 0)


def test_class_prices_are_saved_listed_and_refused_when_negative(admin: httpx.Client, sim_url: str) -> None:
    plain = register_model(admin, f"t{uuid.uuid4().hex[:6]}-sim-chat", "sim-chat", sim_url)
    assert (plain["price_cached_in"], plain["price_cache_write"], plain["price_reasoning"]) == (
        None,
        None,
        None,
    )
    name = _model(admin, sim_url, "sim-chat", price_cached_in=0.25, price_cache_write=3, price_reasoning=0)
    mine = _listed(admin, name)
    assert (mine["price_cached_in"], mine["price_cache_write"], mine["price_reasoning"]) == (0.25, 3, 0)
    refused = admin.post(
        "/admin/model/save",
        json={
            "name": name,
            "provider": "openai-compatible",
            "config": mine_config(sim_url, name),
            "price_reasoning": -1,
        },
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == "price_reasoning"
    again = next(
        m for m in admin.get("/admin/model/list", params={"limit": 500}).json()["data"] if m["name"] == name
    )
    assert again["price_reasoning"] == 0  # nothing half-written


def _listed(admin: httpx.Client, name: str) -> dict:
    listed = admin.get("/admin/model/list", params={"q": name, "limit": 500}).json()["data"]
    return next(m for m in listed if m["name"] == name)


def mine_config(sim_url: str, name: str) -> str:
    return json.dumps({"base_url": f"{sim_url}/v1", "model": name, "api_key": "sk-sim"})
