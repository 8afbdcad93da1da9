"""Cost alerts on the real stack: a budget crossed by real usage events fires 50/80/100% once each,
delivered on Kafka (billing.alerts.v1), by e-mail to a real SMTP server and by signed webhook to a
real HTTP receiver; concurrent crossings and a worker killed mid-send still fire once; a failing
endpoint is retried with backoff, then marked failed, all visible in GET /cost/alerts."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import httpx
import orjson
import pytest
from aiosmtpd.controller import Controller
from alerts_support import (
    Inbox,
    Receiver,
    alerts_of,
    publish,
    read_cost_alerts,
    record_concurrently,
    start_receiver,
    start_smtp,
)

from tollgate.billing.alerts import signing
from tollgate.billing.alerts.policy import RetryPolicy
from tollgate.billing.alerts.schemas import AlertFact
from tollgate.devstack.config import StackConfig
from tollgate.devstack.stack import Stack
from tollgate.devstack.testing import Account, wait_until
from tollgate.devstack.usage_events import usage_event


@pytest.fixture(scope="module")
def smtp(config: StackConfig) -> Iterator[Inbox]:
    controller: Controller
    controller, inbox = start_smtp(config)
    yield inbox
    controller.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = start_receiver()
    yield server
    server.stop()


def settled(http: httpx.Client, count: int) -> list[dict[str, Any]] | None:
    """The org's alerts once there are `count` and no delivery is pending any more."""
    alerts = alerts_of(http)
    done = len(alerts) == count and all(d["status"] != "pending" for a in alerts for d in a["deliveries"])
    return alerts if done else None


def hooks_for(receiver: Receiver, path: str, org_id: str) -> list[Any]:
    return [h for h in receiver.received(path) if orjson.loads(h.body)["data"]["org_id"] == org_id]


def webhook(http: httpx.Client, url: str) -> dict[str, Any]:
    resp = http.post("/cost/webhooks", json={"url": url, "description": "integration"})
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def outcomes(delivery: dict[str, Any]) -> list[str]:
    return [t["outcome"] for t in delivery["attempt_log"]]


def sent_once_or_after_crashes(delivery: dict[str, Any]) -> bool:
    """Delivered by its first attempt, or by the first after attempts cut short by a worker crash
    (other suites kill the shared stack's worker on purpose): never after a failed attempt."""
    log = outcomes(delivery)
    return delivery["status"] == "delivered" and log == ["abandoned"] * (len(log) - 1) + ["delivered"]


def fact(org_id: str, pct: int) -> AlertFact:
    period = datetime.now(UTC).strftime("%Y-%m")
    return AlertFact(
        org_id, None, "budget_threshold", f"bud_{org_id}", period, pct, pct * 100, 10_000, 1_000_000
    )


def test_a_budget_crossed_by_usage_alerts_once_per_threshold_on_every_channel(
    owner: tuple[Account, httpx.Client], config: StackConfig, smtp: Inbox, receiver: Receiver
) -> None:
    account, http = owner
    hook = webhook(http, f"{receiver.base_url}/ok")
    email = f"ops-{uuid.uuid4().hex[:8]}@example.com"
    budget = http.post(
        "/cost/budget", json={"monthly_budget": 0.01, "alert_threshold": 0.8, "alert_emails": [email]}
    )
    assert budget.status_code == 200, budget.text
    # 12 events of 1,000 micros against a 10,000 budget: crossing 50% at the 5th, 80% at the 8th and
    # 100% at the 10th; three producers publish the same events at once (redeliveries, duplicates).
    events = [usage_event(account.org_id, account.key_id, 1_000) for _ in range(12)]
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: publish(config, events), range(3)))
    alerts = wait_until(lambda: settled(http, 3), what="three delivered alerts")

    period = datetime.now(UTC).strftime("%Y-%m")
    assert sorted((a["threshold_pct"], a["kind"], a["period"], a["limit_micros"]) for a in alerts) == [
        (pct, "budget_threshold", period, 10_000) for pct in (50, 80, 100)
    ]
    for alert in alerts:
        assert sorted(d["channel"] for d in alert["deliveries"]) == ["email", "kafka", "webhook"]
        assert all(sent_once_or_after_crashes(d) for d in alert["deliveries"]), alert["deliveries"]
    ids = {a["alert_id"] for a in alerts}

    # deliveries are at least once (a crash mid-send re-sends): receivers dedupe on the alert id
    mails = smtp.to(email)
    assert {m["X-Tollgate-Alert-Id"] for m in mails} == ids
    assert all(m["Subject"].startswith("[Tollgate] Budget alert: ") for m in mails)

    hooks = hooks_for(receiver, "/ok", account.org_id)
    assert {h.headers["tollgate-alert-id"] for h in hooks} == ids
    for h in hooks:
        assert signing.verify(hook["secret"], h.headers["tollgate-signature"], h.body, now=int(time.time()))
        assert not signing.verify(
            "whsec_wrong", h.headers["tollgate-signature"], h.body, now=int(time.time())
        )
        assert orjson.loads(h.body)["type"] == "cost_alert"

    produced = read_cost_alerts(config, account.org_id, want=3)
    assert {p.event.alert_id for p in produced} == ids
    assert {(p.event_type, p.event.org_id, p.event.limit_micros) for p in produced} == {
        ("cost_alert", account.org_id, 10_000)
    }
    assert {p.event.threshold_pct for p in produced} == {50, 80, 100}


def test_concurrent_crossings_and_a_worker_killed_mid_send_still_fire_once(
    owner: tuple[Account, httpx.Client], config: StackConfig, stack: Stack, receiver: Receiver
) -> None:
    account, http = owner
    webhook(http, f"{receiver.base_url}/hang")  # holds every request until released
    facts = [fact(account.org_id, pct) for pct in (50, 80, 100)]
    recorded = record_concurrently(config, facts, copies=8)
    assert sorted(i for ids in recorded for i in ids) == sorted(f.alert_id for f in facts)

    wait_until(lambda: len(hooks_for(receiver, "/hang", account.org_id)) == 3, what="three held webhooks")
    stack.stop_service("billing_worker", kill=True)  # dies while the three webhooks are in flight
    assert record_concurrently(config, facts, copies=4) == [[], [], [], []]
    receiver.release.set()
    stack.start_service("billing_worker")
    alerts = wait_until(lambda: settled(http, 3), what="deliveries after the restart")

    for alert in alerts:
        (hook,) = [d for d in alert["deliveries"] if d["channel"] == "webhook"]
        # the killed attempt is visible as abandoned; its lease expired and the new worker re-sent it
        assert outcomes(hook)[0] == "abandoned" and sent_once_or_after_crashes(hook), hook
        assert {d["status"] for d in alert["deliveries"]} == {"delivered"}
    # at least once: the receiver saw each alert again under the same id, which it dedupes on
    seen = Counter(h.headers["tollgate-alert-id"] for h in hooks_for(receiver, "/hang", account.org_id))
    assert set(seen) == {f.alert_id for f in facts} and min(seen.values()) >= 2
    assert {p.event.alert_id for p in read_cost_alerts(config, account.org_id, want=3)} == {
        f.alert_id for f in facts
    }


def test_a_failing_webhook_is_retried_with_backoff_then_marked_failed(
    owner: tuple[Account, httpx.Client], config: StackConfig, receiver: Receiver, admin: httpx.Client
) -> None:
    account, http = owner
    hook = webhook(http, f"{receiver.base_url}/fail")
    (alert_id,) = record_concurrently(config, [fact(account.org_id, 80)], copies=1)[0]
    (alert,) = wait_until(lambda: settled(http, 1), what="the webhook delivery to give up")

    deliveries = {d["channel"]: d for d in alert["deliveries"]}
    assert deliveries["kafka"]["status"] == "delivered"  # one bad endpoint holds nothing else up
    failed = deliveries["webhook"]
    env = config.alert_vars()
    policy = RetryPolicy(
        max_attempts=int(env["BILLING_ALERT_MAX_ATTEMPTS"]),
        base_s=float(env["BILLING_ALERT_RETRY_BASE_SECONDS"]),
        cap_s=float(env["BILLING_ALERT_RETRY_MAX_SECONDS"]),
    )
    assert (failed["status"], failed["attempts"], failed["last_status_code"], failed["last_error"]) == (
        "failed",
        policy.max_attempts,
        500,
        "HTTP 500",
    )
    log = failed["attempt_log"]
    tried = [t["outcome"] for t in log if t["outcome"] != "abandoned"]  # abandoned: a worker crash
    assert len(log) == policy.max_attempts and tried == ["retry"] * (len(tried) - 1) + ["failed"]
    # each retry waited at least its backoff (database timestamps; a lower bound, never a timing race)
    for previous, following in pairwise(log):
        if previous["outcome"] == "retry":
            started = datetime.fromisoformat(following["started_at"])
            gap = started - datetime.fromisoformat(previous["finished_at"])
            assert gap.total_seconds() >= (policy.delay_after(previous["attempt"]) or 0)
    hooks = hooks_for(receiver, "/fail", account.org_id)
    assert len(tried) <= len(hooks) <= policy.max_attempts
    assert {h.headers["tollgate-alert-id"] for h in hooks} == {alert_id}
    assert len({h.headers["tollgate-delivery-id"] for h in hooks}) == 1
    now = int(time.time())
    assert all(
        signing.verify(hook["secret"], h.headers["tollgate-signature"], h.body, now=now) for h in hooks
    )
    # a platform admin sees the same record by naming the organisation
    seen = admin.get("/cost/alerts", params={"org_id": account.org_id}).json()["data"]
    assert [a["alert_id"] for a in seen] == [alert_id]
