"""Helpers of the payment route tests: the app with a fake auth table and the test provider, and
short calls (buy, pay, refund, read the ledger). A module name no other service's tests use."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.billing.holds.service import HoldService
from tollgate.billing.holds.store import HoldStore
from tollgate.billing.main import build_app, wallet_loader
from tollgate.billing.metrics import BillingMetrics
from tollgate.billing.payments import signature
from tollgate.billing.payments.providers import PaymentProviders, TestProvider
from tollgate.common.auth_client import Principal
from tollgate.common.errors import Unauthenticated

SECRET = b"whsec_unit_routes"
ADMIN = {"Authorization": "Bearer admin-key"}
BUYER = {"Authorization": "Bearer buyer-key"}


def principal(
    key_id: int,
    org_id: str,
    role: str = "user",
    org_role: str = "member",
    perms: tuple[str, ...] = ("read", "write"),
) -> Principal:
    return Principal(key_id, org_id, f"u{key_id}", role, 0, perms, f"tg_{key_id}", 0, 0, org_role=org_role)


class FakeAuth:
    def __init__(self, keys: dict[str, Principal]) -> None:
        self.keys = keys

    async def authenticate(self, api_key: str) -> Principal:
        if api_key not in self.keys:
            raise Unauthenticated("Incorrect API key provided.")
        return self.keys[api_key]


@asynccontextmanager
async def payment_client(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    store: HoldStore,
    org: str,
    other_org: str,
    *,
    with_provider: bool = True,
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """admin-key: platform admin; buyer-key, readonly-key, owner-key: keys of `org` (a member's
    read+write key, a read-only key, its owner's key); other-key: an admin of `other_org`."""
    auth = FakeAuth(
        {
            "admin-key": principal(1, "org_platform", role="admin"),
            "buyer-key": principal(2, org),
            "readonly-key": principal(3, org, perms=("read",)),
            "owner-key": principal(4, org, org_role="owner"),
            "other-key": principal(5, other_org, org_role="admin"),
        }
    )
    registry = registry or CollectorRegistry()
    metrics = BillingMetrics(registry)
    app = build_app(
        registry,
        engine=engine,
        sessions=sessions,
        redis=redis,
        holds=HoldService(store, wallet_loader(sessions), metrics),
        auth=auth,  # type: ignore[arg-type]
        metrics=metrics,
        payment_providers=PaymentProviders(
            {"test": TestProvider(SECRET)} if with_provider else {}, default="test"
        ),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://billing") as c:
        yield c


def webhook(
    payment_id: str,
    *,
    event_type: str = "payment.succeeded",
    secret: bytes = SECRET,
    at: float | None = None,
    **data: Any,
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {"id": f"evt_{uuid.uuid4().hex}", "type": event_type, "data": {"payment_id": payment_id, **data}}
    ).encode()
    header = signature.sign(secret, int(at if at is not None else time.time()), body)
    return body, {"Tollgate-Signature": header, "Content-Type": "application/json"}


async def buy(client: httpx.AsyncClient, package_id: str, headers: dict[str, str] = BUYER) -> dict[str, Any]:
    resp = await client.post("/v1/credits/purchase", json={"package_id": package_id}, headers=headers)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def balance(client: httpx.AsyncClient, headers: dict[str, str] = BUYER) -> int:
    resp = await client.get("/v1/credits", headers=headers)
    assert resp.status_code == 200, resp.text
    return int(resp.json()["balance_micros"])


async def ledger(sessions: async_sessionmaker[AsyncSession], org_id: str) -> list[tuple[str, int]]:
    async with sessions() as s:
        rows = await s.execute(
            text("SELECT kind, amount_micros FROM ledger_entries WHERE org_id = :o ORDER BY id"),
            {"o": org_id},
        )
    return [(r.kind, r.amount_micros) for r in rows]


async def credited_purchase(client: httpx.AsyncClient, package_id: str) -> dict[str, Any]:
    purchase = await buy(client, package_id)
    body, headers = webhook(purchase["checkout"]["provider_payment_id"])
    assert (await client.post("/v1/credits/webhooks/test", content=body, headers=headers)).status_code == 200
    return purchase


async def refund(
    client: httpx.AsyncClient, payment_id: int, amount: float | None, ref: str
) -> httpx.Response:
    body: dict[str, Any] = {"payment_id": payment_id}
    if amount is not None:
        body["amount"] = amount
    return await client.post("/admin/payment/refund", json=body, headers={**ADMIN, "Idempotency-Key": ref})
