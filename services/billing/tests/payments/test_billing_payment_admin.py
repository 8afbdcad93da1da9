"""Refunds, adjustments, package edits, the payment list's scoping and reconciliation through the
real app on the real PostgreSQL and Redis; only auth is faked."""

from __future__ import annotations

import uuid

import httpx
from payment_helpers import (
    ADMIN,
    BUYER,
    balance,
    buy,
    credited_purchase,
    ledger,
    refund,
    webhook,
)
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


async def test_refunds_partial_full_replayed_and_over_refund_refused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], org: str
) -> None:
    payment = (await credited_purchase(client, "pkg_25"))["id"]
    partial = await refund(client, payment, 10, f"r1-{org}")
    assert partial.status_code == 200, partial.text
    assert (
        partial.json()["credits_micros"],
        partial.json()["payment_status"],
        partial.json()["balance_micros"],
    ) == (
        11_000_000,
        "succeeded",
        16_500_000,
    )
    assert (await refund(client, payment, 10, f"r1-{org}")).json() == {**partial.json(), "replayed": True}
    reused = await refund(client, payment, 5, f"r1-{org}")
    assert reused.status_code == 400 and reused.json()["error"]["code"] == "idempotency_key_reused"
    over = await refund(client, payment, 15.000001, f"r2-{org}")
    assert over.status_code == 400 and over.json()["error"]["code"] == "refund_exceeds_payment"
    rest = await refund(client, payment, None, f"r3-{org}")  # all that is left
    assert (rest.json()["amount_micros"], rest.json()["credits_micros"], rest.json()["payment_status"]) == (
        15_000_000,
        16_500_000,
        "refunded",
    )
    again = await refund(client, payment, 1, f"r4-{org}")
    assert again.status_code == 400 and again.json()["error"]["code"] == "refund_exceeds_payment"
    assert await balance(client) == 0
    assert await ledger(sessions, org) == [
        ("recharge", 25_000_000),
        ("bonus", 2_500_000),
        ("refund", -11_000_000),
        ("refund", -16_500_000),
    ]
    no_key = await client.post("/admin/payment/refund", json={"payment_id": payment}, headers=ADMIN)
    assert no_key.status_code == 400
    assert (
        await client.post(
            "/admin/payment/refund", json={"payment_id": payment, "refund_id": "x"}, headers=BUYER
        )
    ).status_code == 403
    assert (await refund(client, 987654321, None, f"r5-{org}")).status_code == 404


async def test_a_refund_may_leave_the_wallet_in_debt(client: httpx.AsyncClient, org: str) -> None:
    payment = (await credited_purchase(client, "pkg_5"))["id"]
    spend = await client.post(
        "/admin/payment/adjust",
        json={"api_key": "buyer-key", "amount": -4, "reason": "spent"},
        headers={**ADMIN, "Idempotency-Key": f"spend-{org}"},
    )
    assert spend.status_code == 200 and spend.json()["balance_micros"] == 1_000_000
    full = await refund(client, payment, None, f"debt-{org}")
    assert full.status_code == 200 and full.json()["balance_micros"] == -4_000_000
    credits = (await client.get("/v1/credits", headers=BUYER)).json()
    assert credits["balance_micros"] == -4_000_000 and credits["available_micros"] == -4_000_000


async def test_refund_of_a_pending_payment_is_refused(client: httpx.AsyncClient, org: str) -> None:
    pending = await buy(client, "pkg_5")
    resp = await refund(client, pending["id"], None, f"pending-{org}")
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "payment_not_refundable"


async def test_adjustments_are_idempotent_and_validated(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], org: str, other_org: str
) -> None:
    url = "/admin/payment/adjust"
    idem = {**ADMIN, "Idempotency-Key": f"adj-{org}"}
    body = {"api_key": "buyer-key", "amount": 2.5, "reason": "goodwill"}
    first = await client.post(url, json=body, headers=idem)
    assert first.status_code == 200 and first.json()["balance_micros"] == 2_500_000
    assert (await client.post(url, json=body, headers=idem)).json() == {**first.json(), "replayed": True}
    changed = await client.post(url, json={**body, "amount": 3}, headers=idem)
    assert changed.status_code == 400 and changed.json()["error"]["code"] == "idempotency_key_reused"
    by_org = await client.post(
        url,
        json={"org_id": org, "amount": -0.5, "reason": "fix"},
        headers={**ADMIN, "Idempotency-Key": f"adj2-{org}"},
    )
    assert by_org.status_code == 200 and by_org.json()["balance_micros"] == 2_000_000
    assert await ledger(sessions, org) == [("adjustment", 2_500_000), ("adjustment", -500_000)]
    assert await balance(client) == 2_000_000
    for bad in (
        {"api_key": "buyer-key", "amount": 0, "reason": "x"},
        {"api_key": "buyer-key", "amount": 1, "reason": ""},
        {"api_key": "buyer-key", "org_id": org, "amount": 1, "reason": "x"},
        {"amount": 1, "reason": "x"},
        {"api_key": "buyer-key", "amount": 0.0000001, "reason": "x"},
    ):
        resp = await client.post(url, json=bad, headers={**ADMIN, "Idempotency-Key": uuid.uuid4().hex})
        assert resp.status_code == 400, (bad, resp.text)
    assert (await client.post(url, json=body, headers=ADMIN)).status_code == 400  # no Idempotency-Key
    ghost = await client.post(
        url,
        json={"org_id": other_org, "amount": 1, "reason": "x"},
        headers={**ADMIN, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert ghost.status_code == 404 and ghost.json()["error"]["code"] == "wallet_not_found"
    unknown = await client.post(
        url, json={**body, "api_key": "nope"}, headers={**ADMIN, "Idempotency-Key": uuid.uuid4().hex}
    )
    assert unknown.status_code == 404
    assert (await client.post(url, json=body, headers={**BUYER, "Idempotency-Key": "x"})).status_code == 403


async def test_admins_edit_packages_and_sales_keep_their_terms(client: httpx.AsyncClient) -> None:
    pid = f"pkg_t{uuid.uuid4().hex[:8]}"
    save = {"id": pid, "name": "Trial", "price": 2, "bonus_pct": 12.5}
    created = await client.post("/admin/payment/package/save", json=save, headers=ADMIN)
    assert created.status_code == 200 and created.json()["total_micros"] == 2_250_000
    assert (await client.post("/admin/payment/package/save", json=save, headers=BUYER)).status_code == 403
    assert (
        await client.post("/admin/payment/package/save", json={**save, "bonus_pct": 1.005}, headers=ADMIN)
    ).status_code == 400
    sold = await buy(client, pid)
    await client.post(
        "/admin/payment/package/save", json={**save, "bonus_pct": 50, "active": False}, headers=ADMIN
    )
    assert pid not in [
        p["id"] for p in (await client.get("/v1/credits/packages", headers=BUYER)).json()["data"]
    ]
    listed = (await client.get("/admin/payment/package/list", headers=ADMIN)).json()["data"]
    assert [p["bonus_pct"] for p in listed if p["id"] == pid] == [50]
    body, headers = webhook(sold["checkout"]["provider_payment_id"])
    assert (await client.post("/v1/credits/webhooks/test", content=body, headers=headers)).json()[
        "outcome"
    ] == "credited"
    assert await balance(client) == 2_250_000  # the terms it was sold at
    assert (
        await client.post("/v1/credits/purchase", json={"package_id": pid}, headers=BUYER)
    ).status_code == 404


async def test_payment_list_is_scoped_to_the_org_admins_organisation(
    client: httpx.AsyncClient, org: str
) -> None:
    mine = await buy(client, "pkg_5")
    owner = {"Authorization": "Bearer owner-key"}
    listed = await client.get("/admin/payment/list", params={"limit": 100}, headers=owner)
    assert listed.status_code == 200
    assert {p["org_id"] for p in listed.json()["data"]} == {org} and mine["id"] in [
        p["id"] for p in listed.json()["data"]
    ]
    by_key = await client.get("/admin/payment/list", params={"key_id": 2}, headers=owner)
    assert [p["id"] for p in by_key.json()["data"]] == [mine["id"]]
    outsider = await client.get(
        "/admin/payment/list", params={"key_id": 2}, headers={"Authorization": "Bearer other-key"}
    )
    assert outsider.status_code == 200 and outsider.json() == {"data": [], "total": 0}
    assert (await client.get("/admin/payment/list", headers=BUYER)).status_code == 403
    platform = await client.get("/admin/payment/list", params={"key_id": 2, "limit": 100}, headers=ADMIN)
    assert mine["id"] in [p["id"] for p in platform.json()["data"]]


async def test_reconcile_finds_a_wallet_that_disagrees_with_its_ledger(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    org: str,
    registry: CollectorRegistry,
) -> None:
    await credited_purchase(client, "pkg_10")
    healthy = await client.get("/admin/payment/reconcile", headers=ADMIN)
    assert healthy.status_code == 200 and org not in [m["org_id"] for m in healthy.json()["mismatches"]]
    async with sessions.begin() as s:
        await s.execute(
            text("UPDATE wallets SET balance_micros = balance_micros + 7 WHERE org_id = :o"), {"o": org}
        )
    try:
        broken = (await client.get("/admin/payment/reconcile", headers=ADMIN)).json()
        found = [m for m in broken["mismatches"] if m["org_id"] == org]
        assert broken["healthy"] is False and found == [
            {
                "org_id": org,
                "balance_micros": 10_000_007,
                "version": 1,
                "ledger_sum_micros": 10_000_000,
                "entries": 1,
                "last_balance_after": 10_000_000,
                "last_wallet_version": 1,
            }
        ]
        mismatched = registry.get_sample_value("billing_reconcile_mismatched_wallets")
        assert mismatched is not None and mismatched >= 1
    finally:
        async with sessions.begin() as s:
            await s.execute(
                text("UPDATE wallets SET balance_micros = balance_micros - 7 WHERE org_id = :o"), {"o": org}
            )
    after = (await client.get("/admin/payment/reconcile", headers=ADMIN)).json()
    assert org not in [m["org_id"] for m in after["mismatches"]]
    assert (await client.get("/admin/payment/reconcile", headers=BUYER)).status_code == 403
