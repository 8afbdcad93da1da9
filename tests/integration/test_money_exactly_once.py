"""No lost or double-counted money: duplicate floods, concurrency, Kafka outages and crashes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from openai import OpenAI

from tollgate.contracts.v1 import events_pb2
from tollgate.devstack.config import StackConfig
from tollgate.devstack.procs import StackError
from tollgate.devstack.stack import Stack
from tollgate.devstack.testing import (
    Account,
    balance_micros,
    expected_cost,
    ledger_usage,
    settled_events,
    wait_until,
)
from tollgate.devstack.usage_events import publish, usage_event

CHAT = [{"role": "user", "content": "one two three"}]  # 3 prompt tokens at the simulator


def _usage_event(account: Account, cost: int, event_id: str | None = None) -> events_pb2.UsageRecorded:
    return usage_event(account.org_id, account.key_id, cost, event_id=event_id, user_id=account.user_id)


def _publish(bootstrap: str, events: list[events_pb2.UsageRecorded]) -> None:
    publish(bootstrap, events, "integration-test")


def test_the_same_event_published_1000_times_is_charged_once(
    new_account: Callable[..., Account],
    config: StackConfig,
    gateway_url: str,
) -> None:
    account = new_account(credits=1)
    duplicate = _usage_event(account, cost=1234)
    sentinel = _usage_event(account, cost=1)  # same org, same partition: settled after every duplicate
    _publish(config.kafka_bootstrap, [duplicate] * 1000 + [sentinel])

    wait_until(lambda: settled_events(config, account.org_id) == 2, what="the flood to be consumed")
    assert ledger_usage(config, account.org_id) == (2, 1235)
    assert balance_micros(gateway_url, account.key) == 1_000_000 - 1235


def test_50_concurrent_requests_against_a_balance_for_10_never_overspend(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    gateway_url: str,
    config: StackConfig,
) -> None:
    cost = expected_cost(0, 16)  # sim-flat-slow: output-only price, so hold == cost == 160 micros
    account = new_account(credits=10 * cost / 1_000_000)
    client = client_for(account.key)

    def call(_: int) -> int:
        try:
            client.chat.completions.create(model="sim-flat-slow", messages=CHAT, max_tokens=16)
            return 200
        except Exception as exc:  # the SDK raises per status; keep the status for the tally
            return getattr(exc, "status_code", -1)

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(call, range(50)))

    assert statuses.count(200) == 10, statuses
    assert statuses.count(402) == 40, statuses
    wait_until(lambda: settled_events(config, account.org_id) == 10, what="the 10 answers to be settled")
    assert ledger_usage(config, account.org_id) == (10, 10 * cost)
    assert balance_micros(gateway_url, account.key) == 0


def test_requests_served_while_kafka_is_down_are_billed_exactly_once(
    stack: Stack,
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    gateway_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=1)
    client = client_for(account.key)
    stack.stop_infra("kafka")
    try:
        for _ in range(20):
            reply = client.chat.completions.create(model="sim-chat", messages=CHAT, max_tokens=4)
            assert reply.usage is not None and reply.usage.completion_tokens == 4
    finally:
        stack.start_infra("kafka")
    cost = expected_cost(3, 4)
    wait_until(
        lambda: settled_events(config, account.org_id) == 20,
        timeout=120,
        what="spooled usage to be published and settled after Kafka came back",
    )
    assert ledger_usage(config, account.org_id) == (20, 20 * cost)
    assert balance_micros(gateway_url, account.key) == 1_000_000 - 20 * cost


def test_billing_killed_between_db_commit_and_offset_commit_does_not_double_charge(
    stack: Stack,
    new_account: Callable[..., Account],
    gateway_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=1)
    events = [_usage_event(account, cost=100 + i) for i in range(200)]
    # published while billing is down, so they are what its first batch after the start holds
    stack.stop_service("billing_worker")
    _publish(config.kafka_bootstrap, events)
    try:
        try:
            stack.start_service("billing_worker", extra_env={"BILLING_FAILPOINT": "crash_after_db_commit"})
        except StackError:  # it may reach the failpoint before its health check answers
            assert not stack.is_running("billing_worker")
        # the failpoint makes billing exit right after its first batch's DB commit, before the offset commit
        wait_until(
            lambda: not stack.is_running("billing_worker"),
            timeout=60,
            what="billing to crash at the failpoint",
        )
        # its DB transaction committed, its offsets did not: these events will be delivered again
        settled_before_crash = settled_events(config, account.org_id)
        assert settled_before_crash > 0
    finally:
        stack.start_service("billing_worker")
    total = sum(e.cost_micros for e in events)
    # the restarted billing re-reads the uncommitted batch: it must skip every event already settled
    # and repair the cached balance it never refreshed before dying
    wait_until(
        lambda: _billing_duplicates(config) >= settled_before_crash,
        timeout=120,
        what="the redelivered batch to be recognised as duplicates",
    )
    wait_until(
        lambda: settled_events(config, account.org_id) == 200,
        timeout=120,
        what="every event to be settled after the restart",
    )
    wait_until(
        lambda: balance_micros(gateway_url, account.key) == 1_000_000 - total,
        what="the cached balance to catch up with the ledger",
    )
    assert ledger_usage(config, account.org_id) == (200, total)


def _billing_duplicates(config: StackConfig) -> float:
    """billing_usage_duplicates_total of the running billing worker (restarts reset it to 0)."""
    text = httpx.get(config.metrics_url("billing_worker"), timeout=5).text
    for line in text.splitlines():
        if line.startswith("billing_usage_duplicates_total "):
            return float(line.split()[1])
    return 0.0


def test_recharge_is_idempotent_on_its_idempotency_key(
    admin: httpx.Client,
    new_account: Callable[..., Account],
    gateway_url: str,
) -> None:
    account = new_account()
    headers = {"Idempotency-Key": f"pay_{uuid.uuid4().hex}"}
    for _ in range(5):
        resp = admin.post(
            "/admin/api-key/recharge", json={"api_key": account.key, "balance": 0.23}, headers=headers
        )
        assert resp.status_code == 200, resp.text
    assert balance_micros(gateway_url, account.key) == 230_000
