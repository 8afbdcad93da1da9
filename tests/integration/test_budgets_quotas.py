"""Budgets, month quotas, capped holds and cost statistics on the real stack (PostgreSQL, Redis,
Kafka, every service as its own process; the upstream simulator is the only stand-in)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import pytest

from tollgate.common.kafka import TOPIC_USAGE, make_producer
from tollgate.contracts.v1 import billing_pb2, billing_pb2_grpc, events_pb2
from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import (
    Account,
    billing_db,
    expected_cost,
    ledger_usage,
    settled_events,
    sim_chat_count,
    wait_until,
)

CHAT = [{"role": "user", "content": "one two three"}]  # 3 prompt tokens at the simulator
FLAT_COST = expected_cost(0, 16)  # sim-flat-slow, max_tokens=16: hold == actual cost == 160 micros

# the simulator reports no cached, cache-write or reasoning tokens for these models
NO_TOKEN_CLASSES = {"cached_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0}


@pytest.fixture(scope="module")
def billing_grpc(config: StackConfig) -> Iterator[billing_pb2_grpc.BillingServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{config.port('billing_grpc')}") as channel:
        yield billing_pb2_grpc.BillingServiceStub(channel)


def reserve(
    stub: billing_pb2_grpc.BillingServiceStub, account: Account, max_cost: int, quota: int = 0
) -> billing_pb2.ReserveResponse:
    request = billing_pb2.ReserveRequest(
        org_id=account.org_id,
        key_id=account.key_id,
        request_id=f"probe_{uuid.uuid4().hex}",
        max_cost_micros=max_cost,
        month_quota_micros=quota,
    )
    reply: billing_pb2.ReserveResponse = stub.Reserve(request, timeout=10)
    if reply.granted:  # a probe: give the hold back
        stub.Release(billing_pb2.ReleaseRequest(org_id=account.org_id, hold_id=reply.hold_id), timeout=10)
    return reply


def chat(gateway_url: str, key: str, model: str = "sim-chat", max_tokens: int = 4) -> httpx.Response:
    return httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": model, "messages": CHAT, "max_tokens": max_tokens},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )


def set_budget(admin: httpx.Client, org_id: str, credits: float, **extra: Any) -> dict[str, Any]:
    resp = admin.post("/cost/budget", json={"monthly_budget": credits, "org_id": org_id, **extra})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def usage_event(account: Account, cost: int, at: datetime, tokens: int = 10) -> events_pb2.UsageRecorded:
    ms = int(at.timestamp() * 1000)
    return events_pb2.UsageRecorded(
        event_id=f"req_{uuid.uuid4().hex}",
        org_id=account.org_id,
        key_id=account.key_id,
        user_id=account.user_id,
        model="sim-chat",
        provider="openai-compatible",
        tokens_in=tokens,
        tokens_out=tokens,
        cost_micros=cost,
        status="ok",
        started_at_unix_ms=ms - 5,
        finished_at_unix_ms=ms,
        endpoint="/v1/chat/completions",
    )


def publish(bootstrap: str, events: list[events_pb2.UsageRecorded]) -> None:
    async def send_all() -> None:
        producer = make_producer(bootstrap, "integration-test-budgets")
        await producer.start()
        try:
            for e in events:
                await producer.send_and_wait(
                    TOPIC_USAGE,
                    e.SerializeToString(),
                    key=e.org_id.encode(),
                    headers=[("event-type", b"UsageRecorded")],
                )
        finally:
            await producer.stop()

    asyncio.run(send_all())


def spent(config: StackConfig, org_id: str, period: str, key_id: int = 0) -> int:
    with billing_db(config) as conn:
        row = conn.execute(
            "SELECT spent_micros FROM spend_counters WHERE org_id = %s AND period = %s AND key_id = %s",
            (org_id, period, key_id),
        ).fetchone()
    return int(row[0]) if row else 0


def test_month_quota_refuses_with_429_before_the_upstream(
    new_account: Callable[..., Account],
    admin: httpx.Client,
    billing_grpc: billing_pb2_grpc.BillingServiceStub,
    gateway_url: str,
    sim_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=1)
    assert chat(gateway_url, account.key).status_code == 200
    cost = expected_cost(3, 4)
    wait_until(lambda: settled_events(config, account.org_id) == 1, what="the first request to settle")
    balance = billing_pb2.GetBalanceRequest(org_id=account.org_id)
    wait_until(lambda: billing_grpc.GetBalance(balance, timeout=10).held_micros == 0, what="its hold to go")
    # billing alone: a quota below what the key spent this month refuses, one above caps the hold
    refused = reserve(billing_grpc, account, 100, quota=cost)
    assert (refused.granted, refused.reason) == (False, "quota_exceeded")
    capped = reserve(billing_grpc, account, 100, quota=cost + 30)
    assert (capped.granted, capped.hold_micros) == (True, 30)

    # through the gateway: the key's month_quota (the Bedrock-style gateway's) comes from auth with
    # the principal
    quota = cost / 1_000_000
    update = admin.post("/admin/api-key/update", json={"id": account.key_id, "month_quota": quota})
    assert update.status_code == 200, update.text
    wait_until(lambda: chat(gateway_url, account.key).status_code == 429, what="the quota to apply")
    before = sim_chat_count(sim_url)
    resp = chat(gateway_url, account.key)
    assert resp.status_code == 429, resp.text
    assert resp.json()["error"]["code"] == "quota_exceeded"
    assert sim_chat_count(sim_url) == before  # refused before any upstream call


def test_a_budget_refuses_with_402_and_last_months_spend_does_not_count(
    new_account: Callable[..., Account],
    admin: httpx.Client,
    billing_grpc: billing_pb2_grpc.BillingServiceStub,
    gateway_url: str,
    sim_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=5)
    now = datetime.now(UTC)
    last_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) - timedelta(seconds=1)
    # a large charge at 23:59:59 on the last day of last month, redelivered twice
    old = usage_event(account, 2_000_000, last_month)
    publish(config.kafka_bootstrap, [old, old, old])
    wait_until(lambda: settled_events(config, account.org_id) == 1, what="last month's event to settle")
    assert spent(config, account.org_id, last_month.strftime("%Y-%m")) == 2_000_000
    assert spent(config, account.org_id, last_month.strftime("%Y-%m-%d"), account.key_id) == 2_000_000
    assert spent(config, account.org_id, now.strftime("%Y-%m")) == 0

    set_budget(admin, account.org_id, 1.0)  # 1 credit this month: last month's 2 credits don't count
    assert chat(gateway_url, account.key).status_code == 200
    wait_until(lambda: settled_events(config, account.org_id) == 2, what="this month's request to settle")
    this_month = spent(config, account.org_id, now.strftime("%Y-%m"))
    assert this_month == expected_cost(3, 4)

    budget = set_budget(admin, account.org_id, this_month / 1_000_000)  # now used up exactly
    assert (budget["spent_micros"], budget["remaining_micros"], budget["percentage_used"]) == (
        this_month,
        0,
        100.0,
    )
    before = sim_chat_count(sim_url)
    resp = chat(gateway_url, account.key)
    assert resp.status_code == 402, resp.text
    assert resp.json()["error"]["code"] == "budget_exceeded"
    assert sim_chat_count(sim_url) == before
    assert reserve(billing_grpc, account, 1).reason == "budget_exceeded"
    # removing the budget lets requests through again at once
    assert (
        admin.post("/cost/budget", json={"monthly_budget": None, "org_id": account.org_id}).status_code == 200
    )
    assert chat(gateway_url, account.key).status_code == 200


def test_50_concurrent_requests_never_exceed_the_budget_plus_one_request(
    new_account: Callable[..., Account],
    admin: httpx.Client,
    gateway_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=1)  # the wallet covers everything: only the budget binds
    budget = 10 * FLAT_COST + FLAT_COST // 2  # ten whole requests and half of an eleventh
    set_budget(admin, account.org_id, budget / 1_000_000)

    def call(_: int) -> httpx.Response:
        return chat(gateway_url, account.key, model="sim-flat-slow", max_tokens=16)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(call, range(50)))
    statuses = [r.status_code for r in responses]
    # ten whole holds, then one capped at the 80 micros left (the one capped hold the rule allows)
    assert statuses.count(200) == 11, statuses
    assert statuses.count(402) == 39, statuses
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 402} == {"budget_exceeded"}

    wait_until(lambda: settled_events(config, account.org_id) == 11, what="the answers to settle")
    count, charged = ledger_usage(config, account.org_id)
    assert count == 11  # every accepted request is charged, in full
    # the documented bound: spend <= budget + (max_cost - hold) of the one capped request
    assert budget < charged <= budget + FLAT_COST
    assert charged == 11 * FLAT_COST

    # /cost/stats (SloughGPT) equals the charged events exactly, read through the gateway
    today = datetime.now(UTC).date().isoformat()
    stats = httpx.get(
        f"{gateway_url}/cost/stats",
        params={"start_date": today, "end_date": today, "granularity": "daily"},
        headers={"Authorization": f"Bearer {account.key}"},
        timeout=30,
    )
    assert stats.status_code == 200, stats.text
    body = stats.json()
    tokens = sum(r.json()["usage"]["total_tokens"] for r in responses if r.status_code == 200)
    assert body["total_cost_micros"] == charged and body["total_cost"] == charged / 1_000_000
    assert body["breakdown"]["inference"] == charged / 1_000_000
    assert body["daily_stats"] == [
        {
            "date": today,
            "cost": charged / 1_000_000,
            "cost_micros": charged,
            "requests": 11,
            "tokens": tokens,
            **NO_TOKEN_CLASSES,
        }
    ]
    status = body["budget_status"]
    assert (status["spent_micros"], status["monthly_budget"]) == (charged, budget / 1_000_000)
    assert status["percentage_used"] == round(charged * 100 / budget, 2)


def test_cost_stats_split_periods_by_the_events_own_time(
    new_account: Callable[..., Account], config: StackConfig, gateway_url: str
) -> None:
    account = new_account(credits=1)
    now = datetime.now(UTC)
    first_of_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    events = [
        usage_event(account, 300, first_of_month - timedelta(milliseconds=1), tokens=1),
        usage_event(account, 500, first_of_month, tokens=2),
        usage_event(account, 700, now, tokens=3),
    ]
    publish(config.kafka_bootstrap, events + events)  # every event twice
    wait_until(lambda: settled_events(config, account.org_id) == 3, what="the events to settle")

    def stats(start: str, end: str) -> dict[str, Any]:
        resp = httpx.get(
            f"{gateway_url}/cost/stats",
            params={"start_date": start, "end_date": end},
            headers={"Authorization": f"Bearer {account.key}"},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    last_day = (first_of_month - timedelta(days=1)).date().isoformat()
    previous = stats(last_day, last_day)
    assert previous["daily_stats"] == [
        {"date": last_day, "cost": 0.0003, "cost_micros": 300, "requests": 1, "tokens": 2, **NO_TOKEN_CLASSES}
    ]
    current = stats(first_of_month.date().isoformat(), now.date().isoformat())
    assert current["total_cost_micros"] == 1_200 and current["budget_status"]["spent_micros"] == 1_200
    both = stats(last_day, now.date().isoformat())
    assert both["total_cost_micros"] == ledger_usage(config, account.org_id)[1] == 1_500
    assert sum(d["requests"] for d in both["daily_stats"]) == 3


def test_cost_routes_refuse_in_sloughgpts_envelope(
    new_account: Callable[..., Account], gateway_url: str
) -> None:
    account = new_account()
    headers = {"Authorization": f"Bearer {account.key}"}
    bad = httpx.get(
        f"{gateway_url}/cost/stats", params={"start_date": "2026-02-30"}, headers=headers, timeout=30
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "INVALID_PARAMETER"
    assert bad.json()["error"]["details"]["parameter"] == "start_date"
    other = httpx.post(
        f"{gateway_url}/cost/budget",
        json={"monthly_budget": 1, "org_id": "org_someone_else"},
        headers=headers,
        timeout=30,
    )
    assert other.status_code == 403 and other.json()["error"]["code"] == "FORBIDDEN"
    anonymous = httpx.get(f"{gateway_url}/cost/stats", timeout=30)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "UNAUTHORIZED"
