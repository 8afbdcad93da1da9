"""/cost/low-balance and the low_balance field of GET /cost/budget through the real app,
PostgreSQL and Redis (auth faked): who may set it, SloughGPT's envelope, nothing half-written."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_budgets_routes import as_, client, holds, org  # noqa: F401  (fixtures)

from tollgate.billing.payments import service as payments


async def low_alert_ids(sessions: async_sessionmaker[AsyncSession], org_id: str) -> list[str]:
    async with sessions() as s:
        rows = await s.execute(
            text("SELECT alert_id FROM alerts WHERE org_id = :o AND kind = 'low_balance' ORDER BY id"),
            {"o": org_id},
        )
        return list(rows.scalars())


async def test_an_owner_sets_reads_and_clears_the_low_balance_alert(
    client: httpx.AsyncClient,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
    org: str,  # noqa: F811
) -> None:
    async with sessions.begin() as s:
        await payments.recharge(
            s, org_id=org, key_id=2, amount_micros=3_000_000, payment_ref=f"p-{org}", method="a"
        )
    budget = {"monthly_budget": 100, "alert_emails": ["fin@example.com"]}
    assert (await client.post("/cost/budget", json=budget, headers=as_("owner"))).status_code == 200
    resp = await client.post("/cost/low-balance", json={"low_balance_threshold": 5}, headers=as_("owner"))
    assert resp.status_code == 200, resp.text
    expected = {
        "object": "low_balance",
        "org_id": org,
        "low_balance_threshold": 5.0,
        "low_balance_threshold_micros": 5_000_000,
        "alert_emails": ["fin@example.com"],
        "alert_emails_from_budget": True,
        "balance": 3.0,
        "balance_micros": 3_000_000,
        "below_threshold": True,
    }
    assert resp.json() == expected
    assert await low_alert_ids(sessions, org) == [f"low_balance:{org}:wallet-v1:100"]  # 3 < 5: at once
    listed = (await client.get("/cost/budget", headers=as_("member"))).json()
    assert listed["low_balance"] == expected
    assert (await client.get("/cost/low-balance", headers=as_("member"))).json() == expected

    own = {"low_balance_threshold": "2.5", "alert_emails": [" ops@example.com", "ops@example.com"]}
    changed = (await client.post("/cost/low-balance", json=own, headers=as_("owner"))).json()
    assert (changed["alert_emails"], changed["alert_emails_from_budget"]) == (["ops@example.com"], False)
    assert changed["below_threshold"] is False  # lowered below the balance: re-armed, nothing fired
    assert len(await low_alert_ids(sessions, org)) == 1

    cleared = await client.post(
        "/cost/low-balance", json={"low_balance_threshold": None}, headers=as_("owner")
    )
    assert cleared.json() == {"object": "low_balance.deleted", "org_id": org, "deleted": True}
    assert (await client.get("/cost/budget", headers=as_("owner"))).json()["low_balance"] is None
    unset = (await client.get("/cost/low-balance", headers=as_("owner"))).json()
    assert (unset["low_balance_threshold"], unset["below_threshold"], unset["alert_emails"]) == (
        None,
        False,
        [],
    )


async def test_a_platform_admin_sets_it_for_any_org(
    client: httpx.AsyncClient,  # noqa: F811
    org: str,  # noqa: F811
) -> None:
    body = {"low_balance_threshold": 1, "org_id": org, "alert_emails": []}
    resp = await client.post("/cost/low-balance", json=body, headers=as_("platform"))
    assert resp.status_code == 200 and resp.json()["org_id"] == org
    assert resp.json()["alert_emails"] == [] and resp.json()["alert_emails_from_budget"] is False
    read = await client.get("/cost/low-balance", params={"org_id": org}, headers=as_("platform"))
    assert read.json()["low_balance_threshold_micros"] == 1_000_000


@pytest.mark.parametrize(
    ("key", "body", "status", "code"),
    [
        ("member", {"low_balance_threshold": 5}, 403, "FORBIDDEN"),
        ("stranger", {"low_balance_threshold": 5, "org_id": "org_other"}, 403, "FORBIDDEN"),
        ("nobody", {"low_balance_threshold": 5}, 401, "UNAUTHORIZED"),
        ("owner", {"low_balance_threshold": -1}, 400, "INVALID_PARAMETER"),
        ("owner", {"low_balance_threshold": 0}, 400, "INVALID_PARAMETER"),
        ("owner", {"low_balance_threshold": "0.0000001"}, 400, "INVALID_PARAMETER"),
        ("owner", {"low_balance_threshold": 2e9}, 400, "INVALID_PARAMETER"),
        ("owner", {"low_balance_threshold": "NaN"}, 400, "INVALID_PARAMETER"),
        ("owner", {"low_balance_threshold": "lots"}, 400, "INVALID_PARAMETER"),
        ("owner", {"low_balance_threshold": 5, "alert_emails": ["not-an-email"]}, 400, "INVALID_PARAMETER"),
        ("owner", {"alert_emails": ["a@example.com"]}, 400, "INVALID_PARAMETER"),
    ],
)
async def test_refusals_use_sloughgpts_envelope_and_write_nothing(
    client: httpx.AsyncClient,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
    org: str,  # noqa: F811
    key: str,
    body: dict[str, object],
    status: int,
    code: str,
) -> None:
    resp = await client.post("/cost/low-balance", json=body, headers=as_(key))
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code and error["message"] and "request_id" in error
    assert (await client.get("/cost/low-balance", headers=as_("owner"))).json()[
        "low_balance_threshold"
    ] is None
    assert await low_alert_ids(sessions, org) == []
