"""Settlement and recharge against a real (scratch) PostgreSQL: exactly-once money movement."""

from __future__ import annotations

import asyncio

import pytest
from billing_helpers import new_org
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.payments import service as payments
from tollgate.billing.payments.service import IdempotencyKeyReused
from tollgate.billing.settlements.schemas import UsageCharge
from tollgate.billing.settlements.service import settle_batch
from tollgate.billing.wallets import repository as wallets


def charge(event_id: str, org: str, cost: int, hold: str | None = None) -> UsageCharge:
    return UsageCharge(event_id, org, 7, hold, "m", cost, "ok")


async def wallet(sessions: async_sessionmaker[AsyncSession], org: str) -> tuple[int, int]:
    async with sessions() as s:
        state = (await wallets.get_many(s, [org]))[org]
    return state.balance_micros, state.version


async def ledger_sum(sessions: async_sessionmaker[AsyncSession], org: str) -> int:
    async with sessions() as s:
        total = await s.scalar(
            text("SELECT coalesce(sum(amount_micros), 0) FROM ledger_entries WHERE org_id = :o"), {"o": org}
        )
    return int(total)


async def recharge(sessions: async_sessionmaker[AsyncSession], org: str, amount: int, ref: str):  # type: ignore[no-untyped-def]
    async with sessions.begin() as s:
        return await payments.recharge(
            s, org_id=org, key_id=7, amount_micros=amount, payment_ref=ref, method="admin"
        )


async def test_a_batch_settles_each_event_once_and_keeps_the_ledger_consistent(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org, other = new_org(), new_org()
    await recharge(sessions, org, 1_000, f"pay-{org}")
    batch = [
        charge(f"{org}-1", org, 100, "h1"),
        charge(f"{org}-2", org, 0, "h2"),
        charge(f"{other}-1", other, 50),
    ]
    batch.append(charge(f"{org}-1", org, 100, "h1"))  # duplicate inside the batch
    async with sessions.begin() as s:
        outcome = await settle_batch(s, batch)
    assert (outcome.settled, outcome.duplicates, outcome.charged_micros) == (3, 1, 150)
    assert await wallet(sessions, org) == (900, 2)  # recharge + one usage entry (the free one posts none)
    assert await wallet(sessions, other) == (-50, 1)  # created on first use, overdrawn by the actual cost
    updates = {u.org_id: u for u in outcome.cache_updates}
    assert list(updates[org].hold_ids) == ["h1", "h2"] and updates[org].balance_micros == 900
    assert updates[org].version == 2 and list(updates[other].hold_ids) == []

    # redelivery of the whole batch: all duplicates, nothing moves, caches still get the DB state
    async with sessions.begin() as s:
        again = await settle_batch(s, batch)
    assert (again.settled, again.duplicates, again.charged_micros) == (0, 4, 0)
    assert await wallet(sessions, org) == (900, 2)
    assert {u.org_id: (u.balance_micros, u.version) for u in again.cache_updates}[org] == (900, 2)
    assert await ledger_sum(sessions, org) == 900 and await ledger_sum(sessions, other) == -50


async def test_ledger_rows_carry_balance_after_and_version(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = new_org()
    await recharge(sessions, org, 500, f"pay-{org}")
    async with sessions.begin() as s:
        await settle_batch(s, [charge(f"{org}-a", org, 100), charge(f"{org}-b", org, 30)])
    async with sessions() as s:
        rows = (
            await s.execute(
                text(
                    "SELECT kind, amount_micros, balance_after, wallet_version FROM ledger_entries "
                    "WHERE org_id = :o ORDER BY id"
                ),
                {"o": org},
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("recharge", 500, 500, 1),
        ("usage", -100, 400, 2),
        ("usage", -30, 370, 3),
    ]


async def test_concurrent_batches_with_the_same_events_charge_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = new_org()
    batch = [charge(f"{org}-{i}", org, 10) for i in range(20)]

    async def settle() -> int:
        async with sessions.begin() as s:
            return (await settle_batch(s, batch)).settled

    assert sorted(await asyncio.gather(settle(), settle(), settle())) == [0, 0, 20]
    assert await wallet(sessions, org) == (-200, 20)


async def test_recharge_is_idempotent_on_its_reference(sessions: async_sessionmaker[AsyncSession]) -> None:
    org = new_org()
    first = await recharge(sessions, org, 230_000, f"idem-{org}")
    again = await recharge(sessions, org, 230_000, f"idem-{org}")
    assert not first.replayed and again.replayed
    assert again.payment_id == first.payment_id and again.wallet == first.wallet
    assert await wallet(sessions, org) == (230_000, 1)
    with pytest.raises(IdempotencyKeyReused):
        await recharge(sessions, org, 1, f"idem-{org}")


async def test_concurrent_recharges_with_one_key_credit_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = new_org()
    results = await asyncio.gather(*(recharge(sessions, org, 1_000, f"race-{org}") for _ in range(5)))
    assert len({r.payment_id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert await wallet(sessions, org) == (1_000, 1)


async def test_the_ledger_is_append_only(sessions: async_sessionmaker[AsyncSession]) -> None:
    org = new_org()
    await recharge(sessions, org, 5, f"pay-{org}")
    with pytest.raises(DBAPIError, match="append-only"):
        async with sessions.begin() as s:
            await s.execute(text("UPDATE ledger_entries SET amount_micros = 0 WHERE org_id = :o"), {"o": org})
    with pytest.raises(DBAPIError, match="append-only"):
        async with sessions.begin() as s:
            await s.execute(text("DELETE FROM ledger_entries WHERE org_id = :o"), {"o": org})


async def test_get_or_create_makes_a_zero_wallet_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    org = new_org()
    async with sessions.begin() as s:
        created = await wallets.get_or_create(s, org)
    async with sessions.begin() as s:
        again = await wallets.get_or_create(s, org)
    assert (created.balance_micros, created.version) == (again.balance_micros, again.version) == (0, 0)
