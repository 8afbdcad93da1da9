"""Package purchases and provider webhooks through the real app on the real PostgreSQL and Redis;
only auth is faked (a table of principals)."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
from payment_helpers import (
    BUYER,
    balance,
    buy,
    ledger,
    payment_client,
    webhook,
)
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.billing.holds.store import HoldStore


async def test_packages_are_seeded_from_the_credit_chat_apis(client: httpx.AsyncClient) -> None:
    resp = await client.get("/v1/credits/packages", headers=BUYER)
    assert resp.status_code == 200
    seeded = {
        p["id"]: (p["price"], p["credits"], p["bonus_credits"], p["total_micros"])
        for p in resp.json()["data"]
    }
    assert {k: v for k, v in seeded.items() if k in ("pkg_5", "pkg_10", "pkg_25", "pkg_50", "pkg_100")} == {
        "pkg_5": (5, 5, 0, 5_000_000),
        "pkg_10": (10, 10, 0, 10_000_000),
        "pkg_25": (25, 25, 2.5, 27_500_000),
        "pkg_50": (50, 50, 7.5, 57_500_000),
        "pkg_100": (100, 100, 20, 120_000_000),
    }
    assert (await client.get("/v1/credits/packages")).status_code == 401


async def test_purchase_then_signed_webhook_credits_package_and_bonus_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], org: str
) -> None:
    purchase = await buy(client, "pkg_25")
    assert purchase["status"] == "pending" and purchase["total_micros"] == 27_500_000
    provider_id = purchase["checkout"]["provider_payment_id"]
    assert await balance(client) == 0  # nothing until the provider confirms

    body, headers = webhook(provider_id, amount_micros=25_000_000, currency="usd")
    first = await client.post("/v1/credits/webhooks/test", content=body, headers=headers)
    assert first.status_code == 200 and first.json() == {
        "received": True,
        "outcome": "credited",
        "payment_id": purchase["id"],
    }
    again = await client.post("/v1/credits/webhooks/test", content=body, headers=headers)
    assert again.json()["outcome"] == "duplicate"
    # another event id for the same payment: still credited once
    body2, headers2 = webhook(provider_id)
    assert (await client.post("/v1/credits/webhooks/test", content=body2, headers=headers2)).json()[
        "outcome"
    ] == "duplicate"
    assert await balance(client) == 27_500_000
    assert await ledger(sessions, org) == [("recharge", 25_000_000), ("bonus", 2_500_000)]


async def test_concurrent_duplicate_webhooks_credit_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], org: str
) -> None:
    purchase = await buy(client, "pkg_50")
    body, headers = webhook(purchase["checkout"]["provider_payment_id"])
    replies = await asyncio.gather(
        *(client.post("/v1/credits/webhooks/test", content=body, headers=headers) for _ in range(50))
    )
    outcomes = [r.json()["outcome"] for r in replies]
    assert outcomes.count("credited") == 1 and outcomes.count("duplicate") == 49
    assert await ledger(sessions, org) == [("recharge", 50_000_000), ("bonus", 7_500_000)]


async def test_bad_webhooks_are_400_and_write_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], org: str
) -> None:
    purchase = await buy(client, "pkg_10")
    provider_id = purchase["checkout"]["provider_payment_id"]
    forged_body, forged = webhook(provider_id, secret=b"not the secret")
    stale_body, stale = webhook(provider_id, at=time.time() - 301)
    wrong_body, wrong_amount = webhook(provider_id, amount_micros=1)
    good_body, good = webhook(provider_id)
    cases = [
        (forged_body, forged, 400, "invalid_signature"),
        (stale_body, stale, 400, "signature_expired"),
        (good_body + b" ", good, 400, "invalid_signature"),
        (good_body, {"Content-Type": "application/json"}, 400, "invalid_signature"),
        (wrong_body, wrong_amount, 400, "amount_mismatch"),
    ]
    for body, headers, status, code in cases:
        resp = await client.post("/v1/credits/webhooks/test", content=body, headers=headers)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), resp.text
    unknown_body, unknown = webhook("testpay_nope")
    assert (
        await client.post("/v1/credits/webhooks/test", content=unknown_body, headers=unknown)
    ).status_code == 404
    assert (
        await client.post("/v1/credits/webhooks/stripe", content=good_body, headers=good)
    ).status_code == 404
    assert await ledger(sessions, org) == []
    async with sessions() as s:
        status = await s.scalar(text("SELECT status FROM payments WHERE id = :i"), {"i": purchase["id"]})
        events = await s.scalar(
            text("SELECT count(*) FROM provider_events WHERE provider_payment_id IN (:p, 'testpay_nope')"),
            {"p": provider_id},
        )
    assert (status, events) == ("pending", 0)
    # the valid one still works afterwards
    assert (await client.post("/v1/credits/webhooks/test", content=good_body, headers=good)).json()[
        "outcome"
    ] == "credited"


async def test_a_failed_payment_credits_nothing_until_it_succeeds(client: httpx.AsyncClient) -> None:
    purchase = await buy(client, "pkg_5")
    provider_id = purchase["checkout"]["provider_payment_id"]
    body, headers = webhook(provider_id, event_type="payment.failed")
    assert (await client.post("/v1/credits/webhooks/test", content=body, headers=headers)).json()[
        "outcome"
    ] == "failed"
    other_body, other = webhook(provider_id, event_type="payment.dispute_opened")
    assert (await client.post("/v1/credits/webhooks/test", content=other_body, headers=other)).json()[
        "outcome"
    ] == "ignored"
    assert await balance(client) == 0
    body, headers = webhook(provider_id)
    assert (await client.post("/v1/credits/webhooks/test", content=body, headers=headers)).json()[
        "outcome"
    ] == "credited"
    assert await balance(client) == 5_000_000


async def test_purchase_needs_write_a_known_package_and_replays_on_idempotency_key(
    client: httpx.AsyncClient,
) -> None:
    ro = await client.post(
        "/v1/credits/purchase", json={"package_id": "pkg_5"}, headers={"Authorization": "Bearer readonly-key"}
    )
    assert ro.status_code == 403
    missing = await client.post("/v1/credits/purchase", json={"package_id": "pkg_nope"}, headers=BUYER)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "package_not_found"
    assert (await client.post("/v1/credits/purchase", json={}, headers=BUYER)).status_code == 400
    idem = {**BUYER, "Idempotency-Key": f"buy-{uuid.uuid4().hex}"}
    first, again = await buy(client, "pkg_10", idem), await buy(client, "pkg_10", idem)
    assert first == again
    reused = await client.post("/v1/credits/purchase", json={"package_id": "pkg_5"}, headers=idem)
    assert reused.status_code == 400 and reused.json()["error"]["code"] == "idempotency_key_reused"
    assert (await buy(client, "pkg_10"))["id"] != first["id"]


async def test_without_a_configured_provider_purchases_are_503_and_webhooks_404(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    store: HoldStore,
    org: str,
    other_org: str,
) -> None:
    async with payment_client(engine, sessions, redis, store, org, other_org, with_provider=False) as bare:
        resp = await bare.post("/v1/credits/purchase", json={"package_id": "pkg_5"}, headers=BUYER)
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "payments_unavailable"
        body, headers = webhook("testpay_x")
        hook = await bare.post("/v1/credits/webhooks/test", content=body, headers=headers)
        assert hook.status_code == 404 and hook.json()["error"]["code"] == "unknown_provider"
