"""/cost/budget and /cost/stats through the real app, PostgreSQL and Redis; auth faked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from billing_helpers import new_org
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from test_billing_routes import FakeAuth

from tollgate.billing.budgets.loaders import limits_loader
from tollgate.billing.holds.service import HoldService
from tollgate.billing.holds.store import HoldStore
from tollgate.billing.main import build_app, wallet_loader
from tollgate.billing.metrics import BillingMetrics
from tollgate.billing.settlements.schemas import UsageCharge
from tollgate.billing.settlements.service import settle_batch
from tollgate.common.auth_client import Principal


def principal(key_id: int, org_id: str, role: str = "user", org_role: str = "") -> Principal:
    return Principal(key_id, org_id, "u", role, 0, ("read", "write"), "tg_x", 0, 0, org_role=org_role)


@pytest.fixture
def org() -> str:
    return new_org()


@pytest.fixture
def holds(
    store: HoldStore, sessions: async_sessionmaker[AsyncSession], metrics: BillingMetrics
) -> HoldService:
    return HoldService(store, wallet_loader(sessions), metrics, load_limits=limits_loader(sessions))


@pytest.fixture
async def client(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    holds: HoldService,
    metrics: BillingMetrics,
    org: str,
) -> AsyncIterator[httpx.AsyncClient]:
    auth = FakeAuth(
        {
            "platform": principal(1, "org_platform", role="admin"),
            "owner": principal(2, org, org_role="owner"),
            "member": principal(3, org, org_role="member"),
            "stranger": principal(4, new_org(), org_role="owner"),
        }
    )
    app = build_app(
        CollectorRegistry(),
        engine=engine,
        sessions=sessions,
        redis=redis,
        holds=holds,
        auth=auth,  # type: ignore[arg-type]
        metrics=metrics,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://billing") as c:
        yield c


def as_(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_an_owner_sets_reads_and_removes_budgets(client: httpx.AsyncClient, org: str) -> None:
    body = {"monthly_budget": 10000.00, "alert_threshold": 0.8, "alert_emails": ["admin@company.com"]}
    resp = await client.post("/cost/budget", json=body, headers=as_("owner"))
    assert resp.status_code == 200, resp.text
    budget = resp.json()
    month = datetime.now(UTC).strftime("%Y-%m")
    assert budget == {
        "object": "budget",
        "id": budget["id"],
        "org_id": org,
        "key_id": None,
        "period": "monthly",
        "monthly_budget": 10000.0,
        "limit_micros": 10_000_000_000,
        "alert_threshold": 0.8,
        "alert_emails": ["admin@company.com"],
        "hard_limit": True,
        "current_period": month,
        "spent": 0.0,
        "spent_micros": 0,
        "remaining": 10000.0,
        "remaining_micros": 10_000_000_000,
        "percentage_used": 0.0,
    }
    daily = {"monthly_budget": 1.5, "key_id": 3, "period": "daily"}
    assert (await client.post("/cost/budget", json=daily, headers=as_("owner"))).status_code == 200
    again = await client.post("/cost/budget", json={**body, "monthly_budget": 20}, headers=as_("owner"))
    assert again.json()["id"] == budget["id"] and again.json()["limit_micros"] == 20_000_000
    listed = (await client.get("/cost/budget", headers=as_("member"))).json()
    assert [(b["key_id"], b["period"], b["limit_micros"]) for b in listed["data"]] == [
        (None, "monthly", 20_000_000),
        (3, "daily", 1_500_000),
    ]
    removed = await client.post("/cost/budget", json={"monthly_budget": None}, headers=as_("owner"))
    assert removed.json() == {
        "object": "budget.deleted",
        "org_id": org,
        "key_id": None,
        "period": "monthly",
        "deleted": True,
    }
    # removing what is not there (any more) says so, on both routes
    again_removed = await client.post("/cost/budget", json={"monthly_budget": None}, headers=as_("owner"))
    assert (again_removed.status_code, again_removed.json()["deleted"]) == (200, False)
    gone = await client.delete("/cost/budget", params={"key_id": 3, "period": "daily"}, headers=as_("owner"))
    assert gone.json()["deleted"] is True
    gone_again = await client.delete(
        "/cost/budget", params={"key_id": 3, "period": "daily"}, headers=as_("owner")
    )
    assert gone_again.json()["deleted"] is False
    assert (await client.get("/cost/budget", headers=as_("owner"))).json()["data"] == []


async def test_a_budget_change_reaches_the_cached_limits_at_once(
    client: httpx.AsyncClient, holds: HoldService, store: HoldStore, org: str
) -> None:
    await store.sync_wallet(org, 10_000_000, 1)
    assert (await holds.reserve(org, "r1", 1_000, key_id=3)).granted  # limits now cached, no budget
    await client.post("/cost/budget", json={"monthly_budget": 0.001}, headers=as_("owner"))
    refused = await holds.reserve(org, "r2", 1_000, key_id=3)
    assert (refused.granted, refused.reason) == (False, "budget_exceeded")  # 1,000 of 1,000 held by r1
    await client.delete("/cost/budget", headers=as_("owner"))
    assert (await holds.reserve(org, "r3", 1_000, key_id=3)).granted


@pytest.mark.parametrize(
    ("key", "body", "status", "code"),
    [
        ("member", {"monthly_budget": 5}, 403, "FORBIDDEN"),
        ("stranger", {"monthly_budget": 5, "org_id": "org_other"}, 403, "FORBIDDEN"),
        ("nobody", {"monthly_budget": 5}, 401, "UNAUTHORIZED"),
        ("owner", {"monthly_budget": -1}, 400, "INVALID_PARAMETER"),
        ("owner", {"monthly_budget": 0}, 400, "INVALID_PARAMETER"),
        ("owner", {"monthly_budget": 2e9}, 400, "INVALID_PARAMETER"),
        ("owner", {"monthly_budget": 5, "alert_threshold": 1.5}, 400, "INVALID_PARAMETER"),
        ("owner", {"monthly_budget": 5, "alert_threshold": 0.855}, 400, "INVALID_PARAMETER"),
        ("owner", {"monthly_budget": 5, "alert_emails": ["not-an-email"]}, 400, "INVALID_PARAMETER"),
        ("owner", {"monthly_budget": 5, "period": "weekly"}, 400, "INVALID_PARAMETER"),
        ("owner", {"monthly_budget": 5, "key_id": 0}, 400, "INVALID_PARAMETER"),
        ("owner", {"alert_threshold": 0.5}, 400, "INVALID_PARAMETER"),
        ("owner", {"monthly_budget": "lots"}, 400, "INVALID_PARAMETER"),
    ],
)
async def test_refusals_use_sloughgpts_envelope_and_write_nothing(
    client: httpx.AsyncClient, key: str, body: dict[str, object], status: int, code: str
) -> None:
    resp = await client.post("/cost/budget", json=body, headers=as_(key))
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code and error["message"] and "request_id" in error
    assert (await client.get("/cost/budget", headers=as_("owner"))).json()["data"] == []


async def test_a_platform_admin_manages_any_org(client: httpx.AsyncClient, org: str) -> None:
    resp = await client.post(
        "/cost/budget", json={"monthly_budget": 3, "org_id": org}, headers=as_("platform")
    )
    assert resp.status_code == 200 and resp.json()["org_id"] == org
    listed = await client.get("/cost/budget", params={"org_id": org}, headers=as_("platform"))
    assert [b["limit_micros"] for b in listed.json()["data"]] == [3_000_000]
    other = await client.get("/cost/budget", params={"org_id": "org_other"}, headers=as_("owner"))
    assert other.status_code == 403


async def test_stats_are_the_rollup_of_the_settled_events(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], org: str
) -> None:
    now = datetime.now(UTC)
    day = now.date().isoformat()
    at = int(now.timestamp() * 1000)
    batch = [
        UsageCharge(f"{org}-{i}", org, 3, None, "m", 1_250_000, "ok", 10, 5, at, "chat", 4, 1, 2)
        for i in range(3)
    ] + [UsageCharge(f"{org}-t", org, 3, None, "m", 500_000, "ok", 0, 0, at, "fine_tuning")]
    async with sessions.begin() as s:
        await settle_batch(s, batch)
    await client.post("/cost/budget", json={"monthly_budget": 10}, headers=as_("owner"))
    resp = await client.get(
        "/cost/stats",
        params={"start_date": day, "end_date": day, "granularity": "daily"},
        headers=as_("member"),
    )
    assert resp.status_code == 200, resp.text
    stats = resp.json()
    assert (stats["total_cost"], stats["total_cost_micros"]) == (4.25, 4_250_000)
    assert stats["breakdown"] == {"inference": 3.75, "training": 0.5, "storage": 0.0, "network": 0.0}
    assert stats["daily_stats"] == [
        {
            "date": day,
            "cost": 4.25,
            "cost_micros": 4_250_000,
            "requests": 4,
            "tokens": 45,
            "cached_tokens": 12,
            "cache_write_tokens": 3,
            "reasoning_tokens": 6,
        }
    ]
    assert stats["budget_status"] == {
        "monthly_budget": 10.0,
        "spent": 4.25,
        "spent_micros": 4_250_000,
        "remaining": 5.75,
        "percentage_used": 42.5,
    }


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"start_date": "2026-13-01"}, "start_date"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"end_date": "2026-1-5"}, "end_date"),
        ({"start_date": "2026-11-10", "end_date": "2026-11-01"}, "end_date"),
        ({"start_date": "2024-01-01", "end_date": "2026-01-01"}, "end_date"),
        ({"granularity": "hourly"}, "granularity"),
    ],
)
async def test_bad_stats_parameters_are_400s_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, str], parameter: str
) -> None:
    resp = await client.get("/cost/stats", params=params, headers=as_("member"))
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == "INVALID_PARAMETER" and error["details"]["parameter"] == parameter


async def test_stats_default_to_this_month_and_fill_empty_days(client: httpx.AsyncClient) -> None:
    stats = (await client.get("/cost/stats", headers=as_("member"))).json()
    today = datetime.now(UTC).date()
    assert stats["start_date"] == today.replace(day=1).isoformat() and stats["end_date"] == today.isoformat()
    assert len(stats["daily_stats"]) == today.day and stats["total_cost_micros"] == 0
    assert stats["budget_status"]["monthly_budget"] is None
    monthly = (
        await client.get("/cost/stats", params={"granularity": "monthly"}, headers=as_("member"))
    ).json()
    assert [d["date"] for d in monthly["daily_stats"]] == [today.isoformat()[:7]]


async def test_a_budget_set_below_what_was_spent_fires_the_thresholds_reached_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], org: str
) -> None:
    at = int(datetime.now(UTC).timestamp() * 1000)
    async with sessions.begin() as s:
        await settle_batch(s, [UsageCharge(f"{org}-1", org, 3, None, "m", 850_000, "ok", 1, 1, at)])
    body = {"monthly_budget": 1, "alert_threshold": 0.85, "alert_emails": ["ops@example.com"]}
    for _ in range(2):  # setting it again fires nothing new
        assert (await client.post("/cost/budget", json=body, headers=as_("owner"))).status_code == 200
    async with sessions() as s:
        rows = await s.execute(
            text("SELECT kind, threshold_pct, spent_micros FROM alerts WHERE org_id = :o ORDER BY 2"),
            {"o": org},
        )
        assert [tuple(r) for r in rows] == [
            ("budget_threshold", 50, 850_000),
            ("budget_threshold", 80, 850_000),
            ("budget_threshold", 85, 850_000),
        ]
