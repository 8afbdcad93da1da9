"""Budgets' part of settlement on the real (scratch) PostgreSQL and Redis: counters once per event,
periods from the event's own time, the daily rollup, alerts once, and Reserve loading limits."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime

import pytest
from billing_helpers import new_org
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.budgets import repository
from tollgate.billing.budgets.loaders import limits_loader, quota_recorder
from tollgate.billing.budgets.repository import BudgetRow
from tollgate.billing.holds.service import HoldService
from tollgate.billing.holds.store import HoldStore
from tollgate.billing.main import wallet_loader
from tollgate.billing.metrics import BillingMetrics
from tollgate.billing.payments import service as payments
from tollgate.billing.settlements.schemas import UsageCharge
from tollgate.billing.settlements.service import settle_batch

NOV = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
OCT = datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)


def charge(
    event_id: str, org: str, cost: int, at: datetime = NOV, key: int = 7, hold: str | None = None
) -> UsageCharge:
    return UsageCharge(
        event_id,
        org,
        key,
        hold,
        "m",
        cost,
        "ok",
        tokens_in=2,
        tokens_out=3,
        occurred_at_ms=int(at.timestamp() * 1000),
    )


async def counters(sessions: async_sessionmaker[AsyncSession], org: str) -> dict[tuple[int, str], int]:
    async with sessions() as s:
        return await repository.spent_in(s, org, ["2026-11", "2026-11-23", "2026-10", "2026-10-31"])


async def alerts_of(sessions: async_sessionmaker[AsyncSession], org: str) -> list[tuple[str, str, int]]:
    async with sessions() as s:
        rows = await s.execute(
            text(
                "SELECT kind, period, threshold_pct FROM alerts WHERE org_id = :o"
                " ORDER BY period, threshold_pct"
            ),
            {"o": org},
        )
        return [(r.kind, r.period, r.threshold_pct) for r in rows]


async def add_budget(sessions: async_sessionmaker[AsyncSession], org: str, limit: int, key: int = 0) -> None:
    async with sessions.begin() as s:
        await repository.bump_version(s, org)
        await repository.upsert_budget(
            s, BudgetRow(f"bud_{org}_{key}", org, key, "monthly", limit, 90, (), True)
        )


async def test_each_event_counts_once_in_its_own_period(sessions: async_sessionmaker[AsyncSession]) -> None:
    org = new_org()
    batch = [charge(f"{org}-1", org, 100), charge(f"{org}-2", org, 40, at=OCT), charge(f"{org}-3", org, 0)]
    for _ in range(2):  # the second pass is a redelivery: nothing more is counted
        async with sessions.begin() as s:
            outcome = await settle_batch(s, batch, now=NOV)
    assert outcome.duplicates == 3
    assert await counters(sessions, org) == {
        (0, "2026-11"): 100,
        (7, "2026-11"): 100,
        (0, "2026-11-23"): 100,
        (7, "2026-11-23"): 100,
        (0, "2026-10"): 40,
        (7, "2026-10"): 40,
        (0, "2026-10-31"): 40,
        (7, "2026-10-31"): 40,
    }
    async with sessions() as s:
        rows = await repository.daily_costs(s, org, OCT.date(), NOV.date())
    assert [(r.day.isoformat(), r.category, r.cost_micros, r.requests, r.tokens) for r in rows] == [
        ("2026-10-31", "inference", 40, 1, 5),
        ("2026-11-23", "inference", 100, 2, 10),  # the free request counts as a request, not as cost
    ]


async def test_the_batch_hands_redis_the_new_totals(sessions: async_sessionmaker[AsyncSession]) -> None:
    org = new_org()
    async with sessions.begin() as s:
        outcome = await settle_batch(s, [charge(f"{org}-1", org, 30, hold="h1")], now=NOV)
    (update,) = outcome.cache_updates
    async with sessions.begin() as s:  # a redelivery (after a crash before Redis) repairs it again
        again = await settle_batch(s, [charge(f"{org}-1", org, 30, hold="h1")], now=NOV)
    assert again.duplicates == 1 and again.cache_updates[0].spent == update.spent
    assert (
        update.hold_ids == ["h1"]
        and update.spent[(7, "2026-11")] == 30
        and update.spent[(0, "2026-11-23")] == 30
    )


async def test_thresholds_alert_once_even_when_batches_race(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = new_org()
    await add_budget(sessions, org, 1_000)

    async def settle(i: int) -> list[str]:
        async with sessions.begin() as s:
            return (await settle_batch(s, [charge(f"{org}-{i}", org, 100)], now=NOV)).alerts

    fired = await asyncio.gather(*(settle(i) for i in range(12)))  # 1,200 of 1,000
    assert sum(len(f) for f in fired) == 4
    assert await alerts_of(sessions, org) == [
        ("budget_threshold", "2026-11", 50),
        ("budget_threshold", "2026-11", 80),
        ("budget_threshold", "2026-11", 90),
        ("budget_threshold", "2026-11", 100),
    ]


async def test_quota_alerts_use_the_quota_reserve_last_saw(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = new_org()
    key = random.randrange(10**9, 10**12)
    await quota_recorder(sessions)(org, key, 200)
    async with sessions.begin() as s:
        await settle_batch(s, [charge(f"{org}-1", org, 170, key=key)], now=NOV)
    assert await alerts_of(sessions, org) == [
        ("quota_threshold", "2026-11", 50),
        ("quota_threshold", "2026-11", 80),
    ]


@pytest.mark.parametrize("quota", [0, 1_000])
async def test_reserve_loads_limits_from_postgres_and_refuses_past_them(
    sessions: async_sessionmaker[AsyncSession], store: HoldStore, metrics: BillingMetrics, quota: int
) -> None:
    org, key = new_org(), random.randrange(10**9, 10**12)
    async with sessions.begin() as s:
        await payments.recharge(
            s, org_id=org, key_id=7, amount_micros=10_000, payment_ref=f"p-{org}", method="admin"
        )
    await add_budget(sessions, org, 2_000)
    now = datetime.now(UTC)
    async with sessions.begin() as s:
        await settle_batch(s, [charge(f"{org}-1", org, 900, at=now, key=key)], now=now)
    holds = HoldService(
        store,
        wallet_loader(sessions),
        metrics,
        load_limits=limits_loader(sessions),
        record_quota=quota_recorder(sessions),
        clock=time.time,
    )
    first = await holds.reserve(org, "r1", 800, key_id=key, month_quota_micros=quota)
    second = await holds.reserve(org, "r2", 800, key_id=key, month_quota_micros=quota)
    third = await holds.reserve(org, "r3", 800, key_id=key, month_quota_micros=quota)
    assert (first.granted, first.hold_micros) == (True, 100 if quota else 800)
    reason = "quota_exceeded" if quota else "budget_exceeded"
    assert (second.granted, second.reason) == ((False, reason) if quota else (True, ""))
    assert second.hold_micros == (0 if quota else 300)  # the org budget's last 300, capped
    assert (third.granted, third.reason) == (False, "quota_exceeded" if quota else "budget_exceeded")
    assert metrics.reserve_refusals.labels(reason)._value.get() >= 1  # type: ignore[attr-defined]
    await holds.drain()  # the quota is recorded off the hot path
    async with sessions() as s:
        assert await repository.quotas_of(s, [key]) == ({key: quota} if quota else {})
