"""REST routes through the real app (create_app envelope), real PostgreSQL and Redis; auth faked."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from billing_helpers import new_org
from grpc import aio
from prometheus_client import CollectorRegistry, generate_latest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.billing.holds.service import HoldService
from tollgate.billing.holds.store import HoldStore
from tollgate.billing.main import build_app, wallet_loader
from tollgate.billing.metrics import BillingMetrics
from tollgate.common.auth_client import Principal
from tollgate.common.errors import Unauthenticated


def principal(key_id: int, org_id: str, role: str) -> Principal:
    return Principal(key_id, org_id, "u", role, 0, ("read", "write"), f"tg_{key_id}", 0, 0)


class FakeAuth:
    """auth's Authenticate: a table of keys; 'down' simulates auth being unreachable."""

    def __init__(self, keys: dict[str, Principal]) -> None:
        self.keys = keys
        self.down = False

    async def authenticate(self, api_key: str) -> Principal:
        if self.down:
            raise aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, aio.Metadata(), aio.Metadata(), "down")
        if api_key not in self.keys:
            raise Unauthenticated("Incorrect API key provided.")
        return self.keys[api_key]


@pytest.fixture
def org() -> str:
    return new_org()


@pytest.fixture
def auth(org: str) -> FakeAuth:
    return FakeAuth(
        {
            "admin-key": principal(1, "org_admin", "admin"),
            "user-key": principal(2, org, "user"),
            "target-key": principal(3, org, "user"),
            # what auth answers for a signed-in user's access token: a principal without a key
            "access-token": principal(0, org, "user"),
        }
    )


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def client(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    store: HoldStore,
    auth: FakeAuth,
    registry: CollectorRegistry,
) -> AsyncIterator[httpx.AsyncClient]:
    metrics = BillingMetrics(registry)
    holds = HoldService(store, wallet_loader(sessions), metrics)
    app = build_app(
        registry,
        engine=engine,
        sessions=sessions,
        redis=redis,
        holds=holds,
        auth=auth,
        metrics=metrics,  # type: ignore[arg-type]
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://billing") as c:
        yield c


ADMIN = {"Authorization": "Bearer admin-key"}


async def test_recharge_credits_the_target_org_once_per_idempotency_key(
    client: httpx.AsyncClient, org: str
) -> None:
    body = {"api_key": "target-key", "balance": 0.23}
    headers = {**ADMIN, "Idempotency-Key": f"idem-{org}"}
    first = await client.post("/admin/api-key/recharge", json=body, headers=headers)
    assert first.status_code == 200, first.text
    data = first.json()
    assert data == {
        "payment_id": data["payment_id"],
        "api_key_id": 3,
        "org_id": org,
        "amount": 0.23,
        "balance": 0.23,
    }
    again = await client.post("/admin/api-key/recharge", json=body, headers=headers)
    assert again.json() == data
    third = await client.post(
        "/admin/api-key/recharge", json={"api_key": "target-key", "balance": 1}, headers=ADMIN
    )
    assert third.json()["balance"] == 1.23 and third.json()["payment_id"] != data["payment_id"]

    # the hot path's cache sees the credit at once
    credits = await client.get("/v1/credits", headers={"Authorization": "Bearer user-key"})
    assert credits.json() == {
        "object": "credits",
        "org_id": org,
        "balance": 1.23,
        "balance_micros": 1_230_000,
        "held_micros": 0,
        "available_micros": 1_230_000,
    }

    listed = await client.get("/admin/payment/list", params={"key_id": "3", "limit": "100"}, headers=ADMIN)
    assert listed.status_code == 200
    mine = [p for p in listed.json()["data"] if p["org_id"] == org]
    assert [p["amount_micros"] for p in mine] == [1_000_000, 230_000]  # newest first
    assert mine[1]["payment_ref"] == f"idem-{org}" and mine[1]["method"] == "admin"


async def test_recharge_errors_use_the_openai_envelope(client: httpx.AsyncClient, auth: FakeAuth) -> None:
    url = "/admin/api-key/recharge"
    ok_body = {"api_key": "target-key", "balance": 1}
    missing = await client.post(url, json=ok_body)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    bad_key = await client.post(url, json=ok_body, headers={"Authorization": "Bearer nope"})
    assert bad_key.status_code == 401 and bad_key.json()["error"]["type"] == "authentication_error"
    not_admin = await client.post(url, json=ok_body, headers={"Authorization": "Bearer user-key"})
    assert not_admin.status_code == 403 and not_admin.json()["error"]["type"] == "permission_error"
    unknown = await client.post(url, json={"api_key": "ghost", "balance": 1}, headers=ADMIN)
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "api_key"
    not_a_key = await client.post(url, json={"api_key": "access-token", "balance": 1}, headers=ADMIN)
    assert not_a_key.status_code == 404 and not_a_key.json()["error"]["code"] == "api_key_not_found"
    for body in (
        {"api_key": "target-key", "balance": 0},
        {"api_key": "target-key", "balance": 2e9},
        {"x": 1},
    ):
        malformed = await client.post(url, json=body, headers=ADMIN)
        assert malformed.status_code == 400 and malformed.json()["error"]["type"] == "invalid_request_error"
    auth.down = True
    unavailable = await client.post(url, json=ok_body, headers=ADMIN)
    assert unavailable.status_code == 503


async def test_idempotency_key_reused_for_another_amount_is_refused(
    client: httpx.AsyncClient, org: str
) -> None:
    headers = {**ADMIN, "Idempotency-Key": f"reuse-{org}"}
    assert (
        await client.post(
            "/admin/api-key/recharge", json={"api_key": "target-key", "balance": 1}, headers=headers
        )
    ).status_code == 200
    again = await client.post(
        "/admin/api-key/recharge", json={"api_key": "target-key", "balance": 2}, headers=headers
    )
    assert again.status_code == 400 and again.json()["error"]["code"] == "idempotency_key_reused"


async def test_payment_list_needs_an_admin_and_valid_paging(client: httpx.AsyncClient) -> None:
    user = await client.get("/admin/payment/list", headers={"Authorization": "Bearer user-key"})
    assert user.status_code == 403
    empty_params = await client.get("/admin/payment/list?key_id=&limit=&offset=", headers=ADMIN)
    assert empty_params.status_code == 200 and set(empty_params.json()) == {"data", "total"}
    assert len(empty_params.json()["data"]) <= 10
    for bad in ("limit=0", "limit=101", "offset=-1", "key_id=abc"):
        assert (await client.get(f"/admin/payment/list?{bad}", headers=ADMIN)).status_code == 400


async def test_credits_of_a_new_org_are_zero_and_need_a_key(client: httpx.AsyncClient, org: str) -> None:
    fresh = await client.get("/v1/credits", headers={"X-API-Key": "user-key"})
    assert fresh.status_code == 200 and fresh.json()["balance_micros"] == 0 and fresh.json()["org_id"] == org
    assert (await client.get("/v1/credits")).status_code == 401


async def test_healthz_checks_database_and_redis(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    health = await client.get("/healthz")
    assert health.status_code == 200 and health.json()["database"] == "ok" and health.json()["redis"] == "ok"
    assert (await client.get("/metrics")).status_code == 404  # served on the metrics port instead
    assert "billing_holds_granted_total" in generate_latest(registry).decode()
