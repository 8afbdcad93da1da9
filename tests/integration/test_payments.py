"""Credit packages bought through the built-in test provider, its signed webhooks, refunds, admin
adjustments, reconciliation and the payment list's scoping, on the real stack (through the gateway).

Webhooks are signed here from the documented scheme (HMAC-SHA256 over f"{t}.{body}") with the secret
the stack gave billing, not with billing's own code.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account, balance_micros, billing_db, sign_up

WEBHOOK = "/v1/credits/webhooks/test"


@pytest.fixture(scope="module")
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=60) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def signed(
    config: StackConfig, payment_id: str, *, secret: str | None = None, at: int | None = None, **data: Any
) -> tuple[bytes, dict[str, str]]:
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": data.pop("type", "payment.succeeded"),
        "data": {"payment_id": payment_id, **data},
    }
    body = json.dumps(event).encode()
    t = int(time.time()) if at is None else at
    key = (secret or config.payments_webhook_secret).encode()
    digest = hmac.new(key, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Tollgate-Signature": f"t={t},v1={digest}", "Content-Type": "application/json"}


def purchase(http: httpx.Client, key: str, package_id: str) -> dict[str, Any]:
    resp = http.post("/v1/credits/purchase", json={"package_id": package_id}, headers=bearer(key))
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "pending"
    return dict(resp.json())


def pay(http: httpx.Client, config: StackConfig, bought: dict[str, Any]) -> None:
    body, headers = signed(
        config, bought["checkout"]["provider_payment_id"], amount_micros=bought["price_micros"]
    )
    resp = http.post(WEBHOOK, content=body, headers=headers)
    assert resp.status_code == 200 and resp.json()["outcome"] == "credited", resp.text


def ledger(config: StackConfig, org_id: str) -> list[tuple[str, int]]:
    with billing_db(config) as conn:
        rows = conn.execute(
            "SELECT kind, amount_micros FROM ledger_entries WHERE org_id = %s ORDER BY id", (org_id,)
        ).fetchall()
    return [(str(k), int(a)) for k, a in rows]


def test_a_package_bought_and_paid_credits_its_credits_and_bonus_exactly(
    http: httpx.Client, config: StackConfig, gateway_url: str, new_account: Callable[..., Account]
) -> None:
    account = new_account()
    packages = http.get("/v1/credits/packages", headers=bearer(account.key))
    assert packages.status_code == 200, packages.text
    by_id = {p["id"]: p for p in packages.json()["data"]}
    assert (by_id["pkg_25"]["price"], by_id["pkg_25"]["bonus_credits"], by_id["pkg_25"]["total_micros"]) == (
        25,
        2.5,
        27_500_000,
    )
    assert by_id["pkg_100"]["total_micros"] == 120_000_000

    bought = purchase(http, account.key, "pkg_25")
    assert balance_micros(gateway_url, account.key) == 0  # nothing before the provider confirms
    pay(http, config, bought)
    assert balance_micros(gateway_url, account.key) == 27_500_000
    assert ledger(config, account.org_id) == [("recharge", 25_000_000), ("bonus", 2_500_000)]
    listed = http.get(
        "/admin/payment/list", params={"key_id": account.key_id}, headers=bearer(config.admin_api_key)
    )
    assert [(p["id"], p["status"], p["paid_micros"], p["bonus_micros"]) for p in listed.json()["data"]] == [
        (bought["id"], "succeeded", 25_000_000, 2_500_000)
    ]


def test_1000_concurrent_duplicate_webhooks_credit_once(
    http: httpx.Client, config: StackConfig, gateway_url: str, new_account: Callable[..., Account]
) -> None:
    account = new_account()
    bought = purchase(http, account.key, "pkg_100")
    body, headers = signed(config, bought["checkout"]["provider_payment_id"])

    async def flood() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(base_url=gateway_url, timeout=120, limits=limits) as client:
            return await asyncio.gather(
                *(client.post(WEBHOOK, content=body, headers=headers) for _ in range(1000))
            )

    replies = asyncio.run(flood())
    assert {r.status_code for r in replies} == {200}
    outcomes = [r.json()["outcome"] for r in replies]
    assert (outcomes.count("credited"), outcomes.count("duplicate")) == (1, 999)
    assert ledger(config, account.org_id) == [("recharge", 100_000_000), ("bonus", 20_000_000)]
    assert balance_micros(gateway_url, account.key) == 120_000_000


def test_bad_signatures_are_400_and_write_nothing(
    http: httpx.Client, config: StackConfig, gateway_url: str, new_account: Callable[..., Account]
) -> None:
    account = new_account()
    bought = purchase(http, account.key, "pkg_10")
    provider_id = bought["checkout"]["provider_payment_id"]
    forged = signed(config, provider_id, secret="whsec_guessed")
    stale = signed(config, provider_id, at=int(time.time()) - 600)
    good_body, good_headers = signed(config, provider_id)
    for body, headers, code in (
        (*forged, "invalid_signature"),
        (*stale, "signature_expired"),
        (good_body.replace(b"payment.succeeded", b"payment.failed"), good_headers, "invalid_signature"),
        (good_body, {"Content-Type": "application/json"}, "invalid_signature"),
    ):
        resp = http.post(WEBHOOK, content=body, headers=headers)
        assert resp.status_code == 400 and resp.json()["error"]["code"] == code, resp.text
    assert ledger(config, account.org_id) == []
    assert balance_micros(gateway_url, account.key) == 0
    with billing_db(config) as conn:
        status = conn.execute("SELECT status FROM payments WHERE id = %s", (bought["id"],)).fetchone()
        events = conn.execute(
            "SELECT count(*) FROM provider_events WHERE provider_payment_id = %s", (provider_id,)
        ).fetchone()
    assert status == ("pending",) and events == (0,)


def refund(
    http: httpx.Client, config: StackConfig, payment_id: int, amount: float | None, ref: str
) -> httpx.Response:
    body: dict[str, Any] = {"payment_id": payment_id, "reason": "customer asked"}
    if amount is not None:
        body["amount"] = amount
    return http.post(
        "/admin/payment/refund", json=body, headers={**bearer(config.admin_api_key), "Idempotency-Key": ref}
    )


def test_refund_partial_then_full_then_over_refund_refused(
    http: httpx.Client, config: StackConfig, gateway_url: str, new_account: Callable[..., Account]
) -> None:
    account = new_account()
    bought = purchase(http, account.key, "pkg_50")  # 50 paid, 57.5 credits granted
    pay(http, config, bought)
    ref = uuid.uuid4().hex
    partial = refund(http, config, bought["id"], 20, f"{ref}-1")
    assert partial.status_code == 200, partial.text
    assert (partial.json()["credits_micros"], partial.json()["balance_micros"]) == (23_000_000, 34_500_000)
    again = refund(http, config, bought["id"], 20, f"{ref}-1")
    assert again.json() == {**partial.json(), "replayed": True}
    over = refund(http, config, bought["id"], 30.01, f"{ref}-2")
    assert over.status_code == 400 and over.json()["error"]["code"] == "refund_exceeds_payment"
    full = refund(http, config, bought["id"], None, f"{ref}-3")
    assert (full.json()["amount_micros"], full.json()["credits_micros"], full.json()["payment_status"]) == (
        30_000_000,
        34_500_000,
        "refunded",
    )
    after = refund(http, config, bought["id"], 0.01, f"{ref}-4")
    assert after.status_code == 400 and after.json()["error"]["code"] == "refund_exceeds_payment"
    assert balance_micros(gateway_url, account.key) == 0
    assert ledger(config, account.org_id) == [
        ("recharge", 50_000_000),
        ("bonus", 7_500_000),
        ("refund", -23_000_000),
        ("refund", -34_500_000),
    ]
    nothing_left = refund(http, config, bought["id"], None, f"{ref}-5")
    assert nothing_left.status_code == 400
    assert (
        http.post(
            "/admin/payment/refund",
            json={"payment_id": bought["id"], "refund_id": ref},
            headers=bearer(account.key),
        ).status_code
        == 403
    )


def test_a_refund_of_spent_credits_leaves_a_debt_that_refuses_new_requests(
    http: httpx.Client, config: StackConfig, gateway_url: str, new_account: Callable[..., Account]
) -> None:
    account = new_account(credits=1)  # an admin recharge: refundable like any payment
    listed = http.get(
        "/admin/payment/list", params={"key_id": account.key_id}, headers=bearer(config.admin_api_key)
    )
    payment_id = listed.json()["data"][0]["id"]
    spend = http.post(
        "/admin/payment/adjust",
        json={"api_key": account.key, "amount": -0.75, "reason": "usage billed elsewhere"},
        headers={**bearer(config.admin_api_key), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert spend.status_code == 200 and spend.json()["balance_micros"] == 250_000
    full = refund(http, config, payment_id, None, uuid.uuid4().hex)
    assert full.status_code == 200 and full.json()["balance_micros"] == -750_000
    assert balance_micros(gateway_url, account.key) == -750_000
    chat = http.post(
        "/v1/chat/completions",
        json={"model": "sim-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
        headers=bearer(account.key),
    )
    assert chat.status_code == 402, chat.text


def test_adjustments_are_idempotent_even_when_retried_concurrently(
    http: httpx.Client, config: StackConfig, gateway_url: str, new_account: Callable[..., Account]
) -> None:
    account = new_account()
    headers = {**bearer(config.admin_api_key), "Idempotency-Key": uuid.uuid4().hex}
    body = {"api_key": account.key, "amount": 3.25, "reason": "support credit"}

    async def retries() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gateway_url, timeout=60) as client:
            return await asyncio.gather(
                *(client.post("/admin/payment/adjust", json=body, headers=headers) for _ in range(20))
            )

    replies = asyncio.run(retries())
    assert {r.status_code for r in replies} == {200}
    assert sorted(r.json()["replayed"] for r in replies) == [False] + [True] * 19
    assert len({r.json()["id"] for r in replies}) == 1
    debit = http.post(
        "/admin/payment/adjust",
        json={"org_id": account.org_id, "amount": -1, "reason": "correction"},
        headers={**bearer(config.admin_api_key), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert debit.status_code == 200 and debit.json()["balance_micros"] == 2_250_000
    reused = http.post("/admin/payment/adjust", json={**body, "amount": 4}, headers=headers)
    assert reused.status_code == 400 and reused.json()["error"]["code"] == "idempotency_key_reused"
    missing_key = http.post("/admin/payment/adjust", json=body, headers=bearer(config.admin_api_key))
    assert missing_key.status_code == 400
    assert ledger(config, account.org_id) == [("adjustment", 3_250_000), ("adjustment", -1_000_000)]
    assert balance_micros(gateway_url, account.key) == 2_250_000


def _user_key(http: httpx.Client, token: str, org_id: str | None = None) -> dict[str, Any]:
    headers = bearer(token) if org_id is None else {**bearer(token), "Swarms-Organization": org_id}
    resp = http.post("/auth/api-keys", json={"name": "payments"}, headers=headers)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def test_payment_list_is_scoped_by_role(
    http: httpx.Client, config: StackConfig, new_account: Callable[..., Account]
) -> None:
    owner = sign_up(http)
    team = http.post("/auth/orgs", json={"name": "Payments team"}, headers=bearer(owner.access_token))
    assert team.status_code == 201, team.text
    org_id = team.json()["id"]
    owner_key = _user_key(http, owner.access_token, org_id)
    member = sign_up(http)
    added = http.post(
        f"/auth/orgs/{org_id}/members",
        json={"email": member.email, "role": "member"},
        headers=bearer(owner.access_token),
    )
    assert added.status_code == 201, added.text
    member_key = _user_key(http, member.access_token, org_id)
    assert owner_key["org_id"] == member_key["org_id"] == org_id
    outsider = new_account(credits=1)

    mine = purchase(http, owner_key["api_key"], "pkg_5")
    theirs = purchase(http, member_key["api_key"], "pkg_10")
    as_owner = http.get("/admin/payment/list", params={"limit": 100}, headers=bearer(owner_key["api_key"]))
    assert as_owner.status_code == 200, as_owner.text
    assert sorted(p["id"] for p in as_owner.json()["data"]) == sorted([mine["id"], theirs["id"]])
    by_key = http.get(
        "/admin/payment/list", params={"key_id": member_key["id"]}, headers=bearer(owner_key["api_key"])
    )
    assert [p["id"] for p in by_key.json()["data"]] == [theirs["id"]]
    # another organisation's key id: an empty page, nothing about whether that key exists
    foreign = http.get(
        "/admin/payment/list", params={"key_id": outsider.key_id}, headers=bearer(owner_key["api_key"])
    )
    assert foreign.status_code == 200 and foreign.json() == {"data": [], "total": 0}
    as_member = http.get("/admin/payment/list", headers=bearer(member_key["api_key"]))
    assert as_member.status_code == 403 and as_member.json()["error"]["type"] == "permission_error"
    platform = http.get(
        "/admin/payment/list", params={"key_id": outsider.key_id}, headers=bearer(config.admin_api_key)
    )
    assert len(platform.json()["data"]) == 1 and platform.json()["data"][0]["org_id"] == outsider.org_id
    recharge = http.post(
        "/admin/api-key/recharge",
        json={"api_key": member_key["api_key"], "balance": 1},
        headers=bearer(owner_key["api_key"]),
    )
    assert recharge.status_code == 403  # recharging stays a platform admin's


def test_reconciliation_is_empty_after_all_of_that_and_finds_a_real_mismatch(
    http: httpx.Client, config: StackConfig, new_account: Callable[..., Account]
) -> None:
    admin = bearer(config.admin_api_key)
    healthy = http.get("/admin/payment/reconcile", headers=admin)
    assert healthy.status_code == 200, healthy.text
    assert healthy.json()["mismatches"] == [] and healthy.json()["healthy"] is True
    assert healthy.json()["wallets_checked"] > 0

    account = new_account(credits=2)
    with billing_db(config) as conn:
        conn.execute(
            "UPDATE wallets SET balance_micros = balance_micros + 1 WHERE org_id = %s", (account.org_id,)
        )
    try:
        broken = http.get("/admin/payment/reconcile", headers=admin).json()
        assert [(m["org_id"], m["balance_micros"], m["ledger_sum_micros"]) for m in broken["mismatches"]] == [
            (account.org_id, 2_000_001, 2_000_000)
        ]
        gauge = httpx.get(config.metrics_url("billing"), timeout=10).text
        assert "billing_reconcile_mismatched_wallets 1.0" in gauge
    finally:
        with billing_db(config) as conn:
            conn.execute(
                "UPDATE wallets SET balance_micros = balance_micros - 1 WHERE org_id = %s", (account.org_id,)
            )
    assert http.get("/admin/payment/reconcile", headers=admin).json()["mismatches"] == []
    assert http.get("/admin/payment/reconcile", headers=bearer(account.key)).status_code == 403
