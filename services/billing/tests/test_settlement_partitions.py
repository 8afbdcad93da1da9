"""usage_settlements by day (migration 0007, pg_partman) and the ledger's partial unique index, on a
real PostgreSQL: copies of an event are refused in whatever partition it sits, within the retention."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import psycopg
import pytest
from alembic import command
from billing_helpers import new_org
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.metrics import BillingMetrics
from tollgate.billing.migrate import DEFAULT_ALEMBIC_INI
from tollgate.billing.settlements.partitions import SettlementPartitions
from tollgate.billing.settlements.repository import AHEAD, event_day_ms
from tollgate.billing.settlements.schemas import UsageCharge
from tollgate.billing.settlements.service import settle_batch
from tollgate.billing.wallets import repository as wallets
from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.common.migrations import alembic_config

NOW = dt.datetime.now(dt.UTC)


def charge(event_id: str, org: str, at: dt.datetime | None, cost: int = 10) -> UsageCharge:
    at_ms = 0 if at is None else int(at.timestamp() * 1000)
    return UsageCharge(event_id, org, 7, None, "m", cost, "ok", occurred_at_ms=at_ms)


async def settle(sessions: async_sessionmaker[AsyncSession], *charges: UsageCharge) -> tuple[int, int]:
    async with sessions.begin() as s:
        outcome = await settle_batch(s, list(charges))
    return outcome.settled, outcome.duplicates


async def where(sessions: async_sessionmaker[AsyncSession], event_id: str) -> list[str]:
    """The partitions holding rows of this event id."""
    async with sessions() as s:
        rows = await s.execute(
            text("SELECT tableoid::regclass::text FROM usage_settlements WHERE event_id = :e"),
            {"e": event_id},
        )
        return [r[0] for r in rows]


async def ledger_count(sessions: async_sessionmaker[AsyncSession], org: str) -> int:
    async with sessions() as s:
        return int(await s.scalar(text("SELECT count(*) FROM ledger_entries WHERE org_id = :o"), {"o": org}))


def maintenance(sessions: async_sessionmaker[AsyncSession], days: int = 35) -> SettlementPartitions:
    return SettlementPartitions(
        sessions, BillingMetrics(CollectorRegistry()), retention_days=days, interval_s=3600
    )


async def make_day_partition(sessions: async_sessionmaker[AsyncSession], day: dt.date) -> str:
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    async with sessions.begin() as s:
        await s.execute(text("SET LOCAL timezone = 'UTC'"))
        # other tests (fixed dates, e.g. budgets') may have left default-partition rows of that day,
        # which would forbid its partition
        await s.execute(
            text("DELETE FROM usage_settlements_default WHERE event_day >= :d AND event_day < :e"),
            {"d": start, "e": start + dt.timedelta(days=1)},
        )
        await s.execute(
            text(
                "SELECT partman.create_partition_time("
                "'public.usage_settlements', ARRAY[CAST(:d AS timestamptz)])"
            ),
            {"d": start},
        )
    return f"usage_settlements_p{day:%Y_%m_%d}"


async def test_a_copy_with_the_same_time_is_refused_in_its_day_partition(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = new_org()
    first = charge(f"{org}-a", org, NOW)
    assert await settle(sessions, first, charge(f"{org}-b", org, NOW - dt.timedelta(days=2))) == (2, 0)
    assert await where(sessions, f"{org}-a") == [f"usage_settlements_p{NOW:%Y_%m_%d}"]

    assert await settle(sessions, first) == (0, 1)  # redelivered alone
    assert await settle(sessions, first, charge(f"{org}-c", org, NOW)) == (1, 1)  # next to a new one
    assert await ledger_count(sessions, org) == 3


async def test_a_copy_re_stamped_the_same_day_is_still_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The reverted design keyed on the event's millisecond: a guard retry re-stamped with a new
    time was settled twice. The key is the event's UTC day, so a re-stamped copy of the same day
    meets its first copy, whichever comes first (producers re-send the first copy's time anyway)."""
    org = new_org()
    midnight = dt.datetime.combine(NOW.date(), dt.time(), dt.UTC)
    first_at, later_at = midnight + dt.timedelta(seconds=1), min(NOW, midnight + dt.timedelta(hours=23))
    assert await settle(sessions, charge(f"{org}-r", org, later_at)) == (1, 0)
    for at in (first_at, later_at + dt.timedelta(milliseconds=1), later_at):
        assert await settle(sessions, charge(f"{org}-r", org, at)) == (0, 1), at
    async with sessions() as s:
        stored = await s.scalar(
            text("SELECT event_day FROM usage_settlements WHERE event_id = :e"), {"e": f"{org}-r"}
        )
    assert stored == midnight
    assert await ledger_count(sessions, org) == 1


def test_the_partition_key_is_the_utc_day_of_the_event_or_the_epoch() -> None:
    at = dt.datetime(2026, 12, 6, 23, 59, 59, 999000, tzinfo=dt.UTC)
    day = int(dt.datetime(2026, 12, 6, tzinfo=dt.UTC).timestamp() * 1000)
    now = at + dt.timedelta(hours=1)
    assert event_day_ms(charge("e", "o", at), now) == day
    assert event_day_ms(charge("e", "o", at - dt.timedelta(hours=23, minutes=59)), now) == day
    assert event_day_ms(charge("e", "o", at + dt.timedelta(milliseconds=1)), now) == day + 86_400_000
    assert event_day_ms(charge("e", "o", None), now) == 0  # no time: the default partition
    assert event_day_ms(charge("e", "o", now + AHEAD + dt.timedelta(seconds=1)), now) == 0  # a wrong clock


async def test_an_event_in_an_old_partition_is_refused_until_its_day_is_past_the_retention(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = new_org()
    kept_day, gone_day = (NOW - dt.timedelta(days=20)).date(), (NOW - dt.timedelta(days=40)).date()
    kept = await make_day_partition(sessions, kept_day)
    gone = await make_day_partition(sessions, gone_day)
    old = charge(f"{org}-old", org, dt.datetime.combine(kept_day, dt.time(23, 59), dt.UTC))
    older = charge(f"{org}-older", org, dt.datetime.combine(gone_day, dt.time(8), dt.UTC))
    assert await settle(sessions, old, older) == (2, 0)
    assert await where(sessions, f"{org}-old") == [kept]

    await maintenance(sessions).run_once()  # 35 days: drops the 40-day-old partition only
    assert await where(sessions, f"{org}-old") == [kept]
    assert await where(sessions, f"{org}-older") == []
    async with sessions() as s:
        names = {
            r[0]
            for r in await s.execute(
                text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'usage_settlements_p%'")
            )
        }
    assert kept in names and gone not in names
    assert f"usage_settlements_p{(NOW + dt.timedelta(days=7)).date():%Y_%m_%d}" in names  # premade

    assert await settle(sessions, old) == (0, 1)  # redelivered 20 days later: still caught
    assert await ledger_count(sessions, org) == 2


async def test_events_without_a_usable_time_sit_in_the_default_partition_and_are_refused_by_id(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = new_org()
    timeless = charge(f"{org}-t", org, None)
    ahead = charge(f"{org}-f", org, NOW + dt.timedelta(days=30))  # a wrong clock: stored as the epoch
    assert await settle(sessions, timeless, ahead) == (2, 0)
    assert await where(sessions, f"{org}-t") == ["usage_settlements_default"]
    assert await where(sessions, f"{org}-f") == ["usage_settlements_default"]

    # copies: the same (no time), and copies carrying a real time are caught by id in the default one
    assert await settle(sessions, timeless, charge(f"{org}-t", org, NOW), charge(f"{org}-f", org, NOW)) == (
        0,
        3,
    )
    assert await ledger_count(sessions, org) == 2


async def test_default_partition_rows_expire_once_settled_longer_ago_than_the_retention(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = new_org()
    assert await settle(sessions, charge(f"{org}-x", org, None), charge(f"{org}-y", org, None)) == (2, 0)
    async with sessions.begin() as s:
        await s.execute(
            text("UPDATE usage_settlements SET created_at = now() - interval '36 days' WHERE event_id = :e"),
            {"e": f"{org}-x"},
        )
    await maintenance(sessions).run_once()
    assert await where(sessions, f"{org}-x") == []
    assert await where(sessions, f"{org}-y") == ["usage_settlements_default"]


async def test_the_partial_index_still_refuses_a_second_recharge_entry_for_one_ref(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = new_org()

    def entry(kind: str, ref: str, version: int) -> wallets.NewLedgerEntry:
        return wallets.NewLedgerEntry(org, 5, kind, ref, 7, 5 * version, version)

    async with sessions.begin() as s:
        await wallets.insert_ledger_entries(s, [entry("recharge", f"pay-{org}", 1)])
    for kind in ("recharge", "refund", "adjustment", "bonus"):
        with pytest.raises(IntegrityError, match="uq_ledger_entries_kind_ref_not_usage"):
            async with sessions.begin() as s:
                await wallets.insert_ledger_entries(
                    s, [entry(kind, f"{kind}-{org}", 2), entry(kind, f"{kind}-{org}", 3)]
                )
    async with sessions() as s:
        assert await wallets.ledger_entry_state(s, "recharge", f"pay-{org}") == (5, 1)
        with pytest.raises(ValueError):
            await wallets.ledger_entry_state(s, "usage", f"pay-{org}")


async def test_lookups_by_ref_use_the_partial_index_under_a_generic_plan(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as s:
        await s.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        await s.execute(text("SET LOCAL enable_seqscan = off"))
        await s.execute(
            text(
                "PREPARE by_ref(text, text) AS SELECT balance_after, wallet_version FROM ledger_entries"
                " WHERE kind = $1 AND ref = $2 AND kind <> 'usage'"
            )
        )
        plan = "\n".join(r[0] for r in await s.execute(text("EXPLAIN EXECUTE by_ref('recharge', 'x')")))
        await s.execute(text("DEALLOCATE by_ref"))
    assert "uq_ledger_entries_kind_ref_not_usage" in plan, plan


async def test_migrating_a_populated_table_keeps_refusing_copies_of_settled_events(database_url: str) -> None:
    """Rows settled before 0007 never stored their event's time: they go to the default partition
    and a late copy, whatever its time, is still refused there."""
    name = f"scratch_billing_mig_{uuid.uuid4().hex[:10]}"
    admin = database_url.replace("postgresql+psycopg://", "postgresql://")
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{database_url.rsplit('/', 1)[0]}/{name}"
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    cfg = alembic_config(DEFAULT_ALEMBIC_INI, url)
    engine = make_engine(url, pool_size=1)
    try:
        await asyncio.to_thread(command.upgrade, cfg, "0006")
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute(
                "INSERT INTO usage_settlements (event_id, org_id, cost_micros, status)"
                " VALUES ('ev-1', 'o', 5, 'ok')"
            )
            await conn.execute(
                "INSERT INTO ledger_entries (org_id, amount_micros, kind, ref, balance_after, wallet_version)"
                " VALUES ('o', -5, 'usage', 'ev-1', -5, 1)"
            )
        await asyncio.to_thread(command.upgrade, cfg, "head")
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            rows = await (
                await conn.execute("SELECT tableoid::regclass::text, event_day FROM usage_settlements")
            ).fetchall()
        assert rows == [("usage_settlements_default", dt.datetime(1970, 1, 1, tzinfo=dt.UTC))]
        # a late copy, carrying its real time, and one without: both refused, nothing charged again
        migrated = make_sessionmaker(engine)
        assert await settle(migrated, charge("ev-1", "o", NOW, cost=5), charge("ev-2", "o", NOW)) == (1, 1)
        assert await settle(migrated, charge("ev-1", "o", None, cost=5)) == (0, 1)
        assert await ledger_count(migrated, "o") == 2
        await engine.dispose()

        await asyncio.to_thread(command.downgrade, cfg, "0006")
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            rows = await (await conn.execute("SELECT event_id FROM usage_settlements ORDER BY 1")).fetchall()
        assert rows == [("ev-1",), ("ev-2",)]
    finally:
        await engine.dispose()
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
