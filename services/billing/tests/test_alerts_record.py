"""record_alerts against a real (scratch) PostgreSQL: once per natural key, deliveries queued."""

from __future__ import annotations

import asyncio

import pytest
from billing_helpers import new_org
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.alerts.schemas import AlertFact
from tollgate.billing.alerts.service import list_alerts, record_alerts


def fact(org: str, pct: int, *, budget: str = "bud_1", emails: tuple[str, ...] = ()) -> AlertFact:
    return AlertFact(
        org_id=org,
        key_id=None,
        kind="budget_threshold",
        budget_id=f"{budget}_{org}",
        period="2026-11",
        threshold_pct=pct,
        spent_micros=pct * 10_000,
        limit_micros=1_000_000,
        balance_micros=5_000_000,
        emails=emails,
    )


async def deliveries(sessions: async_sessionmaker[AsyncSession], org: str) -> list[tuple[str, str, str]]:
    async with sessions() as s:
        rows = await s.execute(
            text(
                "SELECT d.alert_id, d.channel, d.target FROM alert_deliveries d "
                "JOIN alerts a USING (alert_id) WHERE a.org_id = :o ORDER BY d.id"
            ),
            {"o": org},
        )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_alert_id_is_the_natural_key() -> None:
    budget = AlertFact("org_1", 7, "budget_threshold", "bud_9", "2026-11", 80, 1, 2, 3)
    quota = AlertFact("org_1", 7, "quota_threshold", "", "2026-11", 100, 1, 2, 3)
    low = AlertFact("org_1", None, "low_balance", "", "2026-11-23", 10, 1, 2, 3)
    assert budget.alert_id == "budget_threshold:bud_9:2026-11:80"
    assert quota.alert_id == "quota_threshold:7:2026-11:100"
    assert low.alert_id == "low_balance:org_1:2026-11-23:10"
    # the figures observed at the crossing do not change the key: a re-crossing is the same alert
    assert (
        AlertFact("org_1", 7, "budget_threshold", "bud_9", "2026-11", 80, 99, 2, 3).alert_id
        == budget.alert_id
    )


async def test_each_alert_is_recorded_once_with_its_deliveries(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = new_org()
    async with sessions.begin() as s:
        await s.execute(
            text(
                "INSERT INTO webhook_endpoints (id, org_id, url, secret_encrypted, secret_hint) "
                "VALUES (:i, :o, 'http://127.0.0.1:9/x', 'enc', 'whsec_ab…')"
            ),
            {"i": f"we_{org}", "o": org},
        )
    emails = ("a@example.com", "b@example.com", "a@example.com")
    async with sessions.begin() as s:
        first = await record_alerts(s, [fact(org, 50, emails=emails), fact(org, 80, emails=emails)])
    async with sessions.begin() as s:
        again = await record_alerts(s, [fact(org, 50, emails=emails), fact(org, 80), fact(org, 100)])
    assert first == [f"budget_threshold:bud_1_{org}:2026-11:50", f"budget_threshold:bud_1_{org}:2026-11:80"]
    assert again == [f"budget_threshold:bud_1_{org}:2026-11:100"]
    rows = await deliveries(sessions, org)
    fifty = first[0]
    assert [r for r in rows if r[0] == fifty] == [
        (fifty, "kafka", "billing.alerts.v1"),
        (fifty, "email", "a@example.com"),
        (fifty, "email", "b@example.com"),
        (fifty, "webhook", f"we_{org}"),
    ]
    assert len(rows) == 4 + 4 + 2  # the 100% alert had no e-mails


async def test_concurrent_crossings_fire_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    org = new_org()

    async def cross() -> list[str]:
        async with sessions.begin() as s:
            return await record_alerts(s, [fact(org, 80), fact(org, 80)])

    results = await asyncio.gather(*(cross() for _ in range(8)))
    assert sorted(len(r) for r in results) == [0] * 7 + [1]
    assert len(await deliveries(sessions, org)) == 1


async def test_a_rolled_back_settlement_leaves_no_alert(sessions: async_sessionmaker[AsyncSession]) -> None:
    org = new_org()
    with pytest.raises(RuntimeError):
        async with sessions.begin() as s:
            assert await record_alerts(s, [fact(org, 50)])
            raise RuntimeError("settlement failed later in the batch")
    async with sessions() as s:
        assert await list_alerts(s, org, limit=10, before_id=None) == []
    async with sessions.begin() as s:
        assert len(await record_alerts(s, [fact(org, 50)])) == 1


async def test_unknown_kind_is_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    bad = AlertFact("org_x", None, "surprise", "", "2026-11", 50, 1, 2, 3)
    async with sessions.begin() as s:
        with pytest.raises(ValueError, match="unknown alert kind"):
            await record_alerts(s, [bad])
