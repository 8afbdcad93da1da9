"""/cost/webhooks and /cost/alerts through the real app (SloughGPT's envelope), real PostgreSQL and
Redis; auth's Authenticate is a table of keys."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from billing_helpers import new_org
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.billing.alerts.schemas import AlertFact
from tollgate.billing.alerts.secretbox import SecretBox
from tollgate.billing.alerts.service import record_alerts
from tollgate.billing.holds.service import HoldService
from tollgate.billing.holds.store import HoldStore
from tollgate.billing.main import build_app, wallet_loader
from tollgate.billing.metrics import BillingMetrics
from tollgate.common.auth_client import Principal
from tollgate.common.errors import Unauthenticated


def principal(key_id: int, org_id: str, role: str = "user", org_role: str = "") -> Principal:
    return Principal(key_id, org_id, "u", role, 0, ("read",), f"tg_{key_id}", 0, 0, org_role=org_role)


class FakeAuth:
    def __init__(self, keys: dict[str, Principal]) -> None:
        self.keys = keys

    async def authenticate(self, api_key: str) -> Principal:
        if api_key not in self.keys:
            raise Unauthenticated("Incorrect API key provided.")
        return self.keys[api_key]


@pytest.fixture
def org() -> str:
    return new_org()


@pytest.fixture
async def client(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], redis: Redis, store: HoldStore, org: str
) -> AsyncIterator[httpx.AsyncClient]:
    registry = CollectorRegistry()
    metrics = BillingMetrics(registry)
    auth = FakeAuth(
        {
            "platform": principal(1, "org_platform", role="admin"),
            "owner": principal(2, org, org_role="owner"),
            "member": principal(3, org, org_role="member"),
            "stranger": principal(4, new_org(), org_role="owner"),
        }
    )
    app = build_app(
        registry,
        engine=engine,
        sessions=sessions,
        redis=redis,
        holds=HoldService(store, wallet_loader(sessions), metrics),
        auth=auth,  # type: ignore[arg-type]
        metrics=metrics,
        webhook_secrets=SecretBox("test-key"),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://billing") as c:
        yield c


def as_(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def sloughgpt_error(resp: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code and error["message"] and "request_id" in error
    return error  # type: ignore[no-any-return]


async def test_an_owner_creates_lists_and_deletes_webhooks_and_the_secret_is_shown_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], org: str
) -> None:
    resp = await client.post(
        "/cost/webhooks",
        json={"url": "https://hooks.example.com/a", "description": "ops"},
        headers=as_("owner"),
    )
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["secret"].startswith("whsec_") and created["org_id"] == org
    assert created["secret_hint"] == created["secret"][:10] + "…"
    async with sessions() as s:
        stored = await s.scalar(
            text("SELECT secret_encrypted FROM webhook_endpoints WHERE id = :i"), {"i": created["id"]}
        )
    assert stored and created["secret"] not in stored  # encrypted at rest
    listed = (await client.get("/cost/webhooks", headers=as_("owner"))).json()["data"]
    assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]
    assert (await client.delete(f"/cost/webhooks/{created['id']}", headers=as_("owner"))).json() == {
        "id": created["id"],
        "deleted": True,
    }
    assert (await client.get("/cost/webhooks", headers=as_("owner"))).json()["data"] == []
    sloughgpt_error(
        await client.delete(f"/cost/webhooks/{created['id']}", headers=as_("owner")), 404, "NOT_FOUND"
    )


async def test_members_and_other_orgs_are_refused(client: httpx.AsyncClient, org: str) -> None:
    body = {"url": "https://hooks.example.com/a"}
    sloughgpt_error(await client.post("/cost/webhooks", json=body, headers=as_("member")), 403, "FORBIDDEN")
    sloughgpt_error(await client.get("/cost/alerts", headers=as_("member")), 403, "FORBIDDEN")
    sloughgpt_error(
        await client.post("/cost/webhooks", json={**body, "org_id": "org_x"}, headers=as_("owner")),
        403,
        "FORBIDDEN",
    )
    sloughgpt_error(await client.get("/cost/webhooks"), 401, "UNAUTHORIZED")
    sloughgpt_error(await client.get("/cost/webhooks", headers=as_("nope")), 401, "UNAUTHORIZED")
    hook = (await client.post("/cost/webhooks", json=body, headers=as_("owner"))).json()
    sloughgpt_error(
        await client.delete(f"/cost/webhooks/{hook['id']}", headers=as_("stranger")), 404, "NOT_FOUND"
    )
    # a platform admin manages any organisation by naming it
    listed = (await client.get(f"/cost/webhooks?org_id={org}", headers=as_("platform"))).json()["data"]
    assert [w["id"] for w in listed] == [hook["id"]]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"url": "ftp://x.example.com"}, "url"),
        ({"url": ""}, "url"),
        ({}, "url"),
        ({"url": "https://ok.example.com", "description": "x" * 501}, "description"),
    ],
)
async def test_bad_webhook_bodies_are_400_invalid_parameter_and_write_nothing(
    client: httpx.AsyncClient, body: dict[str, str], param: str
) -> None:
    error = sloughgpt_error(
        await client.post("/cost/webhooks", json=body, headers=as_("owner")), 400, "INVALID_PARAMETER"
    )
    assert error["details"]["parameter"] == param  # type: ignore[index]
    assert (await client.get("/cost/webhooks", headers=as_("owner"))).json()["data"] == []


async def test_alerts_are_listed_newest_first_with_deliveries_and_attempts(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], org: str
) -> None:
    facts = [
        AlertFact(
            org,
            None,
            "budget_threshold",
            f"bud_{org}",
            "2026-11",
            pct,
            pct * 100,
            10_000,
            50_000,
            ("a@x.io",),
        )
        for pct in (50, 80, 100)
    ]
    async with sessions.begin() as s:
        await record_alerts(s, facts)
    page = (await client.get("/cost/alerts?limit=2", headers=as_("owner"))).json()
    assert [a["threshold_pct"] for a in page["data"]] == [100, 80] and page["has_more"] is True
    first = page["data"][0]
    assert (first["spent"], first["limit"], first["kind"]) == (0.01, 0.01, "budget_threshold")
    assert [(d["channel"], d["target"], d["status"], d["attempt_log"]) for d in first["deliveries"]] == [
        ("kafka", "billing.alerts.v1", "pending", []),
        ("email", "a@x.io", "pending", []),
    ]
    rest = (await client.get(f"/cost/alerts?before_id={page['data'][1]['id']}", headers=as_("owner"))).json()
    assert [a["threshold_pct"] for a in rest["data"]] == [50] and rest["has_more"] is False
    assert (await client.get("/cost/alerts", headers=as_("stranger"))).json()["data"] == []
    sloughgpt_error(await client.get("/cost/alerts?limit=0", headers=as_("owner")), 400, "INVALID_PARAMETER")
