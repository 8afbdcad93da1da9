"""Low-balance alerts on the real stack: a threshold set through the gateway's /cost/low-balance,
spend through the gateway and through published usage events (three producers at once, so
every event arrives several times) takes the wallet below it once, a recharge re-arms it, and the
next crossing fires a second alert: exactly two alerts in GET /cost/alerts and exactly two
CostAlerts on billing.alerts.v1, however many duplicates the worker sees."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from alerts_support import alerts_of, publish, read_cost_alerts
from openai import OpenAI

from tollgate.contracts.v1 import events_pb2
from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account, balance_micros, settled_events, wait_until
from tollgate.devstack.usage_events import usage_event


def low_alerts(http: httpx.Client) -> list[dict[str, Any]]:
    return [a for a in alerts_of(http) if a["kind"] == "low_balance"]


def at_least(alerts: list[dict[str, Any]], count: int) -> list[dict[str, Any]] | None:
    return alerts if len(alerts) >= count else None


def all_delivered(alerts: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    done = all(d["status"] == "delivered" for a in alerts for d in a["deliveries"])
    return alerts if done else None


def publish_three_times(config: StackConfig, events: list[events_pb2.UsageRecorded]) -> None:
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: publish(config, events), range(3)))


def test_each_crossing_alerts_once_and_a_recharge_re_arms(
    owner: tuple[Account, httpx.Client],
    admin: httpx.Client,
    config: StackConfig,
    gateway_url: str,
    client_for: Callable[[str], OpenAI],
) -> None:
    account, http = owner
    # The threshold is exactly the balance (1 credit): not below it, so nothing fires yet.
    resp = http.post("/cost/low-balance", json={"low_balance_threshold": 1})
    assert resp.status_code == 200, resp.text
    setting = resp.json()
    assert (setting["balance_micros"], setting["below_threshold"]) == (1_000_000, False)
    assert (setting["alert_emails"], setting["alert_emails_from_budget"]) == ([], True)  # no budget
    assert http.get("/cost/budget").json()["low_balance"] == setting

    # Crossing 1: one real chat request through the gateway takes the balance below 1 credit.
    chat = client_for(account.key).chat.completions.create(
        model="sim-chat", messages=[{"role": "user", "content": "hello"}], max_tokens=16
    )
    assert chat.usage is not None
    wait_until(lambda: settled_events(config, account.org_id) == 1, what="the chat request settled")
    first = wait_until(lambda: low_alerts(http) or None, what="the first low-balance alert")
    after_chat = balance_micros(gateway_url, account.key)
    assert after_chat < 1_000_000
    assert [(a["limit_micros"], a["balance_micros"]) for a in first] == [(1_000_000, after_chat)]

    # Re-arm: a recharge of 1 credit lifts the balance back above the threshold.
    recharge = admin.post("/admin/api-key/recharge", json={"api_key": account.key, "balance": 1})
    assert recharge.status_code == 200, recharge.text
    assert http.get("/cost/low-balance").json()["below_threshold"] is False

    # Crossing 2: ten usage events of 0.1 credit, each published three times at once.
    events = [usage_event(account.org_id, account.key_id, 100_000) for _ in range(10)]
    publish_three_times(config, events)
    wait_until(lambda: settled_events(config, account.org_id) == 11, what="the ten events settled")
    alerts = wait_until(lambda: at_least(low_alerts(http), 2), what="a second alert")
    assert balance_micros(gateway_url, account.key) == after_chat  # + 1 credit - 10 x 0.1 credit
    second = next(a for a in alerts if a["alert_id"] != first[0]["alert_id"])
    # after the recharge the balance was after_chat + 1 credit: the tenth event took it below 1 credit
    assert (second["limit_micros"], second["balance_micros"]) == (1_000_000, after_chat)

    # Duplicates of every event again: still two alerts, and exactly two CostAlerts on Kafka.
    publish_three_times(config, events)
    wait_until(lambda: settled_events(config, account.org_id) == 11, what="the duplicates dropped")
    delivered = wait_until(lambda: all_delivered(low_alerts(http)), what="both alerts delivered")
    assert [a["alert_id"] for a in delivered] == [a["alert_id"] for a in alerts] and len(alerts) == 2
    assert all([d["channel"] for d in a["deliveries"]] == ["kafka"] for a in delivered)
    produced = read_cost_alerts(config, account.org_id, want=3, timeout_s=5)  # a third would show here
    assert {p.event.alert_id for p in produced} == {a["alert_id"] for a in alerts}
    assert all(p.event.kind == "low_balance" and p.event_type == "cost_alert" for p in produced)
    assert all(p.event.limit_micros == 1_000_000 for p in produced)
    assert http.get("/cost/low-balance").json()["below_threshold"] is True


def test_setting_a_threshold_above_the_balance_alerts_at_once(owner: tuple[Account, httpx.Client]) -> None:
    account, http = owner
    resp = http.post("/cost/low-balance", json={"low_balance_threshold": 5, "alert_emails": []})
    assert resp.status_code == 200 and resp.json()["below_threshold"] is True
    assert http.post("/cost/low-balance", json={"low_balance_threshold": 5}).status_code == 200  # again
    (alert,) = low_alerts(http)
    assert alert["alert_id"] == f"low_balance:{account.org_id}:wallet-v1:100"
    assert (alert["limit_micros"], alert["balance_micros"]) == (5_000_000, 1_000_000)


def test_refusals_use_sloughgpts_envelope(
    new_account: Callable[..., Account], gateway_url: str, admin: httpx.Client
) -> None:
    account = new_account()
    with httpx.Client(base_url=gateway_url, headers={"Authorization": "Bearer nope"}, timeout=30) as anon:
        unauthenticated = anon.post("/cost/low-balance", json={"low_balance_threshold": 1})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["code"] == "UNAUTHORIZED"
    bad = admin.post("/cost/low-balance", json={"low_balance_threshold": -1, "org_id": account.org_id})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_PARAMETER"
    assert bad.json()["error"]["details"]["parameter"] == "low_balance_threshold"
    read = admin.get("/cost/low-balance", params={"org_id": account.org_id})
    assert read.status_code == 200 and read.json()["low_balance_threshold"] is None
