"""A real Prometheus scrapes the running stack (every process on its own metrics port), and then:
every target is up, every Grafana panel's query returns data, and the alerting rules load and stay
quiet on a healthy stack. The public HTTP ports serve no /metrics at all.

The traffic is the platform's ordinary work, twice a few seconds apart (so that counters first seen
in the first round have a rate): paid chat requests, a refused one (no credits), a rate-limited
one, a package bought through the test provider's signed webhook, and a budget alert delivered.
No panel is exempt: each one must show data after that traffic.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_support import (
    RULE_FILES,
    Prometheus,
    concrete,
    panel_queries,
    running_prometheus,
    service_label,
)

from tollgate.devstack.config import METRICS_PORT_NAME, StackConfig
from tollgate.devstack.stack import Stack
from tollgate.devstack.testing import Account, settled_events, wait_until
from tollgate.devstack.usage_events import publish, usage_event

CHAT = {"model": "sim-chat", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}


@pytest.fixture(scope="module")
def prometheus(config: StackConfig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    with running_prometheus(config, tmp_path_factory.mktemp("prometheus")) as server:
        yield server


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def buy_credits(http: httpx.Client, config: StackConfig, key: str) -> None:
    """pkg_10 through the test provider, paid by its signed webhook (as the provider would)."""
    bought = http.post("/v1/credits/purchase", json={"package_id": "pkg_10"}, headers=bearer(key))
    assert bought.status_code == 200, bought.text
    payment = bought.json()
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": "payment.succeeded",
        "data": {
            "payment_id": payment["checkout"]["provider_payment_id"],
            "amount_micros": payment["price_micros"],
        },
    }
    body = json.dumps(event).encode()
    t = int(time.time())
    digest = hmac.new(
        config.payments_webhook_secret.encode(), f"{t}.".encode() + body, hashlib.sha256
    ).hexdigest()
    headers = {"Tollgate-Signature": f"t={t},v1={digest}", "Content-Type": "application/json"}
    paid = http.post("/v1/credits/webhooks/test", content=body, headers=headers)
    assert paid.status_code == 200 and paid.json()["outcome"] == "credited", paid.text


def one_round(
    http: httpx.Client, admin: httpx.Client, config: StackConfig, new_account: Callable[..., Account]
) -> None:
    buyer = new_account()
    buy_credits(http, config, buyer.key)
    for _ in range(3):
        answer = http.post("/v1/chat/completions", json=CHAT, headers=bearer(buyer.key))
        assert answer.status_code == 200, answer.text
    broke = new_account()
    assert http.post("/v1/chat/completions", json=CHAT, headers=bearer(broke.key)).status_code == 402
    limited = new_account(credits=1)
    assert admin.post("/admin/api-key/limits", json={"id": limited.key_id, "rpm": 1}).status_code == 200
    statuses = [
        http.post("/v1/chat/completions", json=CHAT, headers=bearer(limited.key)).status_code
        for _ in range(2)
    ]
    assert statuses == [200, 429], statuses
    # a budget crossed by settled usage: billing's worker delivers the alerts (Kafka channel)
    watched = new_account(credits=1)
    budget = http.post("/cost/budget", json={"monthly_budget": 0.001}, headers=bearer(watched.key))
    assert budget.status_code == 200, budget.text
    publish(config.kafka_bootstrap, [usage_event(watched.org_id, watched.key_id, 1_000)], "prometheus-test")
    wait_until(lambda: alerts_delivered(http, watched.key), timeout=60, what="the budget alerts delivered")


def alerts_delivered(http: httpx.Client, key: str) -> bool:
    alerts = http.get("/cost/alerts", headers=bearer(key)).json()["data"]
    deliveries = [d for a in alerts for d in a["deliveries"]]
    return bool(deliveries) and all(d["status"] == "delivered" for d in deliveries)


def has_data(prometheus: Prometheus, expr: str) -> bool:
    """A non-empty result with at least one number (an all-NaN quantile shows nothing in Grafana)."""
    return any(not math.isnan(float(r["value"][1])) for r in prometheus.query(expr))


def test_public_ports_serve_no_metrics_and_metrics_ports_do(config: StackConfig) -> None:
    for process in METRICS_PORT_NAME:
        assert httpx.get(f"{config.url(process)}/metrics", timeout=10).status_code == 404, process
        scraped = httpx.get(config.metrics_url(process), timeout=10)
        assert scraped.status_code == 200 and "http_requests_total" in scraped.text, process


def test_every_target_is_up_and_every_panel_has_data(
    prometheus: Prometheus,
    config: StackConfig,
    gateway_url: str,
    admin: httpx.Client,
    new_account: Callable[..., Account],
) -> None:
    targets = len(METRICS_PORT_NAME)

    def scraped_after(moment: float) -> None:
        wait_until(lambda: prometheus.scraped_all_since(moment, targets), what="a scrape of every target")

    # Prometheus' first scrapes come seconds after it is ready (target discovery is throttled):
    # each round is framed by scrapes, so the second round's increments make rates
    scraped_after(time.time())
    with httpx.Client(base_url=gateway_url, timeout=60) as http:
        for _ in range(2):
            one_round(http, admin, config, new_account)
            scraped_after(time.time())

    up = prometheus.query("up")
    assert {r["metric"]["service"]: r["value"][1] for r in up} == {
        service_label(p): "1" for p in METRICS_PORT_NAME
    }

    queries = panel_queries()
    assert len(queries) >= 40  # every dashboard target, not a sample of them

    def without_data() -> list[str]:
        window = prometheus.window()
        return [
            f"{q.dashboard} / {q.panel} / {q.ref_id}: {concrete(q.expr, window)}"
            for q in queries
            if not has_data(prometheus, concrete(q.expr, window))
        ]

    try:
        wait_until(lambda: not without_data(), timeout=45, what="data in every panel")
    except AssertionError:
        pytest.fail("panels without data:\n" + "\n".join(without_data()))


def test_the_alert_rules_load_and_none_fires_on_a_healthy_stack(prometheus: Prometheus) -> None:
    expected = {rule["alert"] for path in RULE_FILES for g in _groups(path) for rule in g["rules"]}
    loaded = wait_until(lambda: prometheus.rules(), what="rules loaded")
    assert {rule["name"] for rule in loaded if rule["type"] == "alerting"} == expected
    # every rule evaluated at least once, without an error, and none pending or firing
    evaluated = wait_until(
        lambda: (
            (rules := prometheus.rules())
            and all(not r["lastEvaluation"].startswith("0001") for r in rules)
            and rules
        ),
        what="every rule evaluated",
    )
    for rule in evaluated:
        assert rule["health"] == "ok", rule
        assert rule["state"] == "inactive" and rule["alerts"] == [], rule


def consumer_lag(config: StackConfig, process: str) -> float:
    """The sum over partitions of a consumer process's usage lag gauge, read from its metrics port."""
    text = httpx.get(config.metrics_url(process), timeout=10).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(LAG[process] + "{"))


LAG = {"billing_worker": "billing_usage_consumer_lag", "analytics": "analytics_usage_consumer_lag"}


def test_consumer_lag_grows_through_a_database_outage_and_returns_to_zero(
    stack: Stack, config: StackConfig, new_account: Callable[..., Account]
) -> None:
    """Last in this module (it stops PostgreSQL): while the database is away nothing is settled or
    stored, and the lag gauges say so (they are measured beside the stuck poll loops); once it is
    back every event is settled once and the lag is 0 again."""
    account = new_account(credits=1)
    events = [usage_event(account.org_id, account.key_id, 1_000) for _ in range(20)]
    stack.stop_infra("postgres")
    try:
        publish(config.kafka_bootstrap, events, "prometheus-lag-test")
        for process in LAG:
            wait_until(
                lambda p=process: consumer_lag(config, p) >= len(events),
                timeout=30,
                what=f"{process}'s lag to show the events it cannot store",
            )
    finally:
        stack.start_infra("postgres")
    for process in LAG:
        wait_until(
            lambda p=process: consumer_lag(config, p) == 0,
            timeout=90,
            what=f"{process}'s lag back to 0",
        )
    assert settled_events(config, account.org_id) == len(events)
    for process in METRICS_PORT_NAME:  # the stack is whole again for the tests after this one
        wait_until(
            lambda p=process: httpx.get(f"{config.url(p)}/readyz", timeout=5).status_code == 200,
            timeout=60,
            what=f"{process} ready",
        )


def _groups(path: Path) -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text())["groups"])
