"""Day partitions of the usage facts (migration 0003, pg_partman) on a real PostgreSQL database:
rollups equal the raw facts whatever the duplicates, and maintenance drops partitions past retention."""

from __future__ import annotations

import datetime as dt
import random

from analytics_testkit import make_fact
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.analytics.metrics import AnalyticsMetrics
from tollgate.analytics.usage.partitions import PartitionMaintenance, Retention
from tollgate.analytics.usage.repository import UsageRepository
from tollgate.analytics.usage.service import StoredWindow, UsageService

_SUMS = "count(*), sum(tokens_in), sum(tokens_out), sum(cost_micros), sum(latency_ms), sum(tokens_reasoning)"
_ROLLED = (
    "sum(requests), sum(tokens_in), sum(tokens_out), sum(cost_micros), sum(latency_ms_sum),"
    " sum(tokens_reasoning)"
)


async def _rows(sessions: async_sessionmaker[AsyncSession], sql: str) -> set[tuple]:
    async with sessions() as session:
        return {tuple(r) for r in await session.execute(text(sql))}


async def _partitions(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    rows = await _rows(
        sessions,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'usage_events'::regclass",
    )
    return {r[0] for r in rows}


async def test_rollups_equal_the_raw_facts_under_redelivery(sessions) -> None:
    now = dt.datetime.now(dt.UTC)
    rng = random.Random(7)
    facts = [
        make_fact(
            f"r{i}",
            org_id=rng.choice(["org_a", "org_b"]),
            model=rng.choice(["m1", "m2", "m3"]),
            tokens_in=rng.randrange(1, 500),
            tokens_out=rng.randrange(0, 500),
            cost_micros=rng.randrange(0, 10_000),
            latency_ms=rng.randrange(1, 2000),
            tokens_reasoning=rng.randrange(0, 50),
            created_at=now - dt.timedelta(minutes=rng.randrange(0, 3 * 24 * 60)),
        )
        for i in range(300)
    ]
    service = UsageService(UsageRepository(), StoredWindow(retention_days=30))
    inserted = 0
    # every fact delivered twice, the copies in other batches, some twice in one batch
    for batch in (facts[:200], facts[150:] + facts[:20], facts[250:] + facts[250:]):
        async with sessions() as session, session.begin():
            inserted += (await service.record(session, batch)).inserted
    assert inserted == 300

    raw_daily = await _rows(
        sessions,
        f"SELECT org_id, (created_at AT TIME ZONE 'UTC')::date, model, {_SUMS}"
        " FROM usage_events GROUP BY 1, 2, 3",
    )
    daily = await _rows(sessions, f"SELECT org_id, day, model, {_ROLLED} FROM usage_daily GROUP BY 1, 2, 3")
    raw_hourly = await _rows(
        sessions,
        f"SELECT org_id, date_trunc('hour', created_at AT TIME ZONE 'UTC'), model, {_SUMS}"
        " FROM usage_events GROUP BY 1, 2, 3",
    )
    hourly = await _rows(
        sessions,
        f"SELECT org_id, hour AT TIME ZONE 'UTC', model, {_ROLLED} FROM usage_hourly GROUP BY 1, 2, 3",
    )
    assert sum(r[3] for r in raw_daily) == 300
    assert daily == raw_daily
    assert hourly == raw_hourly
    # each fact in its own day's partition, none in the default one
    assert await _rows(sessions, "SELECT count(*) FROM usage_events_default") == {(0,)}


async def test_maintenance_drops_partitions_past_retention_and_keeps_today(sessions) -> None:
    old = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=40)
    name = f"usage_events_p{old:%Y_%m_%d}"
    async with sessions() as session, session.begin():
        await session.execute(
            text(
                f"CREATE TABLE {name} PARTITION OF usage_events"
                f" FOR VALUES FROM ('{old} 00:00+00') TO ('{old + dt.timedelta(days=1)} 00:00+00')"
            )
        )
    async with sessions() as session, session.begin():
        await UsageRepository().insert_new_events(
            session, [make_fact("old", created_at=dt.datetime.combine(old, dt.time(12), dt.UTC))]
        )
    assert await _rows(sessions, f"SELECT event_id FROM {name}") == {("old",)}
    today = f"usage_events_p{dt.datetime.now(dt.UTC).date():%Y_%m_%d}"
    assert {name, today} <= await _partitions(sessions)

    metrics = AnalyticsMetrics(CollectorRegistry())
    maintenance = PartitionMaintenance(sessions, Retention(30, 400), metrics, interval_s=3600)
    await maintenance.run_once()

    left = await _partitions(sessions)
    assert name not in left
    assert await _rows(sessions, "SELECT event_id FROM usage_events WHERE event_id = 'old'") == set()
    assert today in left
    ahead = f"usage_events_p{dt.datetime.now(dt.UTC).date() + dt.timedelta(days=7):%Y_%m_%d}"
    assert ahead in left
    assert await _rows(
        sessions, "SELECT retention FROM partman.part_config WHERE parent_table = 'public.usage_events'"
    ) == {("30 days",)}
    assert metrics.fact_partitions._value.get() == len(left) - 1  # the default one is not counted


async def test_facts_outside_the_stored_window_are_skipped(sessions) -> None:
    now = dt.datetime.now(dt.UTC)
    service = UsageService(UsageRepository(), StoredWindow(retention_days=30), clock=lambda: now)
    facts = [
        make_fact("kept", created_at=now),
        make_fact("expired", created_at=now - dt.timedelta(days=31)),
        make_fact("ahead", created_at=now + dt.timedelta(days=5)),
    ]
    async with sessions() as session, session.begin():
        result = await service.record(session, facts)

    assert (result.inserted, result.duplicates, result.out_of_window) == (1, 0, 2)
    assert await _rows(sessions, "SELECT event_id FROM usage_events") == {("kept",)}


async def test_maintenance_moves_a_late_fact_from_the_default_partition_into_its_day(sessions) -> None:
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=20)  # before the partitions made at migration
    name = f"usage_events_p{day:%Y_%m_%d}"
    async with sessions() as session, session.begin():
        await UsageRepository().insert_new_events(
            session, [make_fact("late", created_at=dt.datetime.combine(day, dt.time(9), dt.UTC))]
        )
    assert await _rows(sessions, "SELECT event_id FROM usage_events_default") == {("late",)}

    metrics = AnalyticsMetrics(CollectorRegistry())
    await PartitionMaintenance(sessions, Retention(30, 400), metrics, interval_s=3600).run_once()

    assert await _rows(sessions, f"SELECT event_id FROM {name}") == {("late",)}
    assert await _rows(sessions, "SELECT count(*) FROM usage_events_default") == {(0,)}


async def test_maintenance_moves_late_rows_of_the_facts_and_the_rollup_in_one_run(sessions) -> None:
    """Late rows in two tables' default partitions at once: pg_partman keeps the rows it moves in a
    temp table shaped like the first table of the transaction, so both moves in one transaction
    failed on the second table (and with them every later run, retention included)."""
    late = dt.datetime.combine(dt.datetime.now(dt.UTC).date() - dt.timedelta(days=20), dt.time(9), dt.UTC)
    month_ago = dt.datetime(late.year - 1, late.month, 1, 5, tzinfo=dt.UTC)  # before the hourly partitions
    async with sessions() as session, session.begin():
        await UsageRepository().insert_new_events(session, [make_fact("late-too", created_at=late)])
        await session.execute(
            text(
                "INSERT INTO usage_hourly (hour, org_id, model, requests, errors, tokens_in, tokens_out,"
                " cost_micros, latency_ms_sum) VALUES (:hour, 'org_late', 'm', 1, 0, 1, 1, 1, 1)"
            ),
            {"hour": month_ago},
        )
    assert await _rows(sessions, "SELECT count(*) FROM usage_hourly_default WHERE org_id = 'org_late'") == {
        (1,)
    }

    metrics = AnalyticsMetrics(CollectorRegistry())
    await PartitionMaintenance(sessions, Retention(30, 800), metrics, interval_s=3600).run_once()

    assert await _rows(sessions, "SELECT count(*) FROM usage_events_default") == {(0,)}
    assert await _rows(sessions, "SELECT count(*) FROM usage_hourly_default") == {(0,)}
    assert await _rows(sessions, "SELECT count(*) FROM usage_hourly WHERE org_id = 'org_late'") == {(1,)}
